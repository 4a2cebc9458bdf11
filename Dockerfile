# CollabDNN: one image for the cloud server, the scheduler and the mobile agent.
#
#   docker build -t collabdnn .                                   # CPU torch
#   docker build -t collabdnn --build-arg FETCH_WEIGHTS=0 .       # no ImageNet weights
#   docker build -t collabdnn:cuda \
#       --build-arg BASE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04 \
#       --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130 .
#
# The container runs as an unprivileged user; `collabdnn link set` needs root inside
# the container (docker compose exec -u root mobile collabdnn link set --network 3g).
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG FETCH_WEIGHTS=1
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TORCH_HOME=/opt/torch

# iproute2 brings tc, for shaping the mobile container's link; python3 for CUDA bases.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 \
 && (command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 python3-pip python3-venv) \
 && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --index-url ${TORCH_INDEX} torch==2.14.1 torchvision==0.29.1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY collabdnn ./collabdnn
COPY mobile_agent ./mobile_agent
COPY cloud_server ./cloud_server
COPY scheduler ./scheduler
COPY samples ./samples
RUN pip install . && mkdir -p /opt/torch && useradd --create-home --uid 10001 collab

# torchvision's official ImageNet weights, fetched at build time so the containers
# classify meaningfully offline (--weights imagenet). FETCH_WEIGHTS=0 skips this.
RUN if [ "$FETCH_WEIGHTS" = "1" ]; then \
      python -c "import torchvision; [torchvision.models.get_model(m, weights='DEFAULT') for m in ('alexnet', 'resnet18', 'mobilenet_v2', 'vgg11')]"; \
    fi \
 && chown -R collab /opt/torch

USER collab
WORKDIR /home/collab
ENV COLLABDNN_SAMPLES=/src/samples
ENTRYPOINT ["collabdnn"]
CMD ["--help"]
