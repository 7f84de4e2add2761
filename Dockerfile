# opsloop's container image: `docker build -t opsloop:local .`, then `docker run opsloop:local`
# (serve) or `docker run opsloop:local worker`. deploy/README.md says how to run it.
#
# BASE is any image with python3 (3.11 or newer) and its venv module: the official slim image by
# default, or e.g. a Debian image with `python3 python3-venv` (tests/test_image.py builds one with
# mmdebstrap, since no registry is reachable there). Both stages use it, so the virtual
# environment copied from the first finds its interpreter at the same path in the second.
ARG BASE=python:3.11-slim

# ---- build: wheels for opsloop and every dependency, installed into /opt/opsloop ------------
FROM ${BASE} AS build

# WHEELHOUSE, when set, is a folder in the build context holding every wheel the install needs
# (the dependencies and setuptools, to build opsloop's own wheel); pip then reads it alone and
# the build needs no network. Unset (the default), pip reads PyPI. tests/image_build.py uses it:
# there a build container has no network, and `--network host` would not do either, since the
# host reaches PyPI through a TLS-intercepting proxy whose CA only the host trusts. The wheels
# are made beforehand by `pip wheel` in a container of the same base (so they fit its Python),
# on the host's network with the host's CA bundle mounted; the build itself stays offline and
# unaware of that CA.
ARG WHEELHOUSE=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

COPY . /src
RUN set -eu; \
    if [ -n "$WHEELHOUSE" ]; then export PIP_NO_INDEX=1 PIP_FIND_LINKS="/src/$WHEELHOUSE"; fi; \
    python3 -m venv /opt/opsloop; \
    /opt/opsloop/bin/pip wheel --quiet --wheel-dir /wheels /src; \
    /opt/opsloop/bin/pip install --quiet --no-index --find-links /wheels opsloop; \
    /opt/opsloop/bin/pip uninstall --quiet --yes pip setuptools; \
    /opt/opsloop/bin/opsloop --help >/dev/null

# ---- the image: the interpreter, the virtual environment, nothing to build with -------------
FROM ${BASE}

ARG UID=10001
LABEL org.opencontainers.image.title="opsloop" \
      org.opencontainers.image.description="Slack ChatOps bot for the whole DevOps loop: tasks, builds, canary deploys and alerts" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="deploy/README.md"

# A fixed uid, so that volumes and Kubernetes' runAsUser can name it. Its home is the data
# directory: the embedded Redis (used when OPSLOOP_REDIS_URL is unset) writes there.
RUN groupadd --gid "$UID" opsloop \
 && useradd --uid "$UID" --gid "$UID" --no-log-init --home-dir /var/lib/opsloop --create-home \
            --shell /usr/sbin/nologin opsloop \
 && mkdir -p /etc/opsloop

COPY --from=build /opt/opsloop /opt/opsloop

# Listen on every interface (the bot's own default, 127.0.0.1, is unreachable from outside a
# container). The working directory is where opsloop looks for opsloop.yml and .env: mount
# the YAML file at /etc/opsloop/opsloop.yml, or point OPSLOOP_CONFIG_FILE elsewhere.
ENV PATH=/opt/opsloop/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OPSLOOP_HOST=0.0.0.0 \
    OPSLOOP_PORT=3000 \
    OPSLOOP_DATA_DIR=/var/lib/opsloop
WORKDIR /etc/opsloop
USER ${UID}:${UID}
EXPOSE 3000

# Python's urllib, so the image needs no curl. `worker` serves no HTTP: its liveness is its
# process (and its heartbeat in Redis, which `/ops status` counts), so the check passes for it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request as u; cmd = open('/proc/1/cmdline', 'rb').read().split(b'\\0'); sys.exit(0) if b'worker' in cmd else u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('OPSLOOP_PORT', '3000'), timeout=4)"]

ENTRYPOINT ["opsloop"]
CMD ["serve"]
