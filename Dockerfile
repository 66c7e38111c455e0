# syntax=docker/dockerfile:1
# vpnwatch: real VPN handshakes exported to Prometheus on :10877.
#
#   docker build -t vpnwatch .
#   docker run --rm --cap-drop ALL -v "$PWD/config:/etc/vpnwatch:ro" -p 10877:10877 vpnwatch
#
# Probes open ordinary UDP and TCP sockets, so the container needs no capability at all: run it
# with every capability dropped (docker-compose.yml does). It runs as an unprivileged user and
# writes nothing to its filesystem, so a read-only root filesystem works too.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# pymonocypher (obfs4's Elligator 2) is published as source only: the build stage compiles it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/vpnwatch
WORKDIR /src
# Every dependency at the exact version constraints.txt pins (scripts/lock.sh writes it), so a
# build does not depend on the day it runs. What is copied is what .dockerignore lets through.
# VPNWATCH_REQUIREMENT is this source tree by default; the stack `vpnwatch stack write` puts out
# builds the released package instead (vpnwatch==VERSION) from a context with no source in it.
ARG VPNWATCH_REQUIREMENT=.
COPY . ./
RUN /opt/vpnwatch/bin/pip install -c constraints.txt "$VPNWATCH_REQUIREMENT"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="vpnwatch" \
      org.opencontainers.image.description="VPN and circumvention health monitor: real WireGuard, OpenVPN and obfs4 handshakes, exported to Prometheus" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10877 vpnwatch \
 && useradd --system --uid 10877 --gid vpnwatch --no-create-home --shell /usr/sbin/nologin vpnwatch
COPY --from=build /opt/vpnwatch /opt/vpnwatch
ENV PATH=/opt/vpnwatch/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER vpnwatch:vpnwatch
EXPOSE 10877
# The standard library's HTTP client: the slim image has no curl, and adding it would only add
# attack surface. A non-2xx answer or no answer within 3 s makes the check fail.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:10877/healthz', timeout=3)"]
ENTRYPOINT ["vpnwatch"]
CMD ["run", "--config", "/etc/vpnwatch/vpnwatch.yml", "--listen", "0.0.0.0:10877"]
