# CollabDNN: one image for the cloud server, the scheduler and the mobile agent.
#
#   docker build -t collabdnn .                                   # CPU-only torch
#   docker build -t collabdnn --build-arg FETCH_WEIGHTS=0 .       # no ImageNet weights:
#                                                                 # run with COLLABDNN_WEIGHTS=seed:0
#   docker build -t collabdnn:cuda \
#       --build-arg BASE=nvidia/cuda:13.0.0-cudnn-runtime-ubuntu24.04 \
#       --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130 .
#
# Layers go from the least to the most often changed: system packages, torch, the other
# dependencies (read from pyproject.toml), the project's code, and last, on its own, the
# weights; toggling FETCH_WEIGHTS or editing the code rebuilds nothing above them.
#
# The container runs as an unprivileged user; `collabdnn link set` needs root inside
# the container (docker compose exec -u root mobile collabdnn link set --network 3g
# --interface eth0; docs/compose.md).
ARG BASE=python:3.11-slim
FROM ${BASE}

# Build-time only (ARGs, not ENVs): apt asks no questions and debconf does not warn.
ARG DEBIAN_FRONTEND=noninteractive
ARG DEBCONF_NOWARNINGS=yes
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TORCH_HOME=/opt/torch

# iproute2 brings tc and ip (shaping the mobile container's link), procps brings ps;
# python3 and its venv module for bases that lack them (CUDA images).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 procps \
 && (command -v python3 >/dev/null && python3 -c "import venv, ensurepip" 2>/dev/null \
     || apt-get install -y --no-install-recommends python3 python3-venv) \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 collab \
 && mkdir -p /opt/torch && chown collab /opt/torch

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The CPU-only wheels by default (PyPI's plain torch is the CUDA build and pulls several
# GB of nvidia-* wheels); a CUDA index for a GPU cloud (docs/compose.md has both sizes).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX}" torch==2.14.1 torchvision==0.29.1

# The other dependencies, from pyproject.toml alone: this layer survives code changes.
COPY pyproject.toml /tmp/collabdnn/
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/collabdnn/pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm -rf /tmp/collabdnn /tmp/requirements.txt

# The project itself, built outside /src and without its build tree or egg-info.
COPY pyproject.toml README.md /tmp/collabdnn/
COPY collabdnn /tmp/collabdnn/collabdnn
COPY mobile_agent /tmp/collabdnn/mobile_agent
COPY cloud_server /tmp/collabdnn/cloud_server
COPY scheduler /tmp/collabdnn/scheduler
RUN pip install --no-deps /tmp/collabdnn && rm -rf /tmp/collabdnn
COPY samples /src/samples

USER collab
WORKDIR /home/collab
ENV COLLABDNN_SAMPLES=/src/samples
ENTRYPOINT ["collabdnn"]
CMD ["--help"]

# torchvision's official ImageNet weights, fetched at build time (by `collabdnn weights
# fetch`, which checks each file's hash) so that the containers classify meaningfully
# offline (COLLABDNN_WEIGHTS=imagenet, Compose's default).
# FETCH_WEIGHTS=0 skips this; run such an image with COLLABDNN_WEIGHTS=seed:0 (with
# imagenet the cloud exits at once, saying that the weights are not in the image).
ARG FETCH_WEIGHTS=1
RUN if [ "$FETCH_WEIGHTS" = "1" ]; then \
      for model in alexnet resnet18 mobilenet_v2 vgg11; do collabdnn weights fetch "$model" || exit 1; done; \
    else \
      echo "FETCH_WEIGHTS=$FETCH_WEIGHTS: no ImageNet weights in this image; run it with COLLABDNN_WEIGHTS=seed:0"; \
    fi
