"""Making a real, worse network and a weaker phone on one Linux machine (root).

``netns`` (private network namespaces), ``shaping`` (``tc`` rate shaping of an
interface) and ``throttle`` (a CPU quota through a cgroup). Used by ``collabdnn link``,
the demo, tests and benchmarks; the services never import it.
"""
