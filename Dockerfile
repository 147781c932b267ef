# One image for the authz server, the Mint and the demo upstream (the command picks which):
#   docker build -t satgate-envoy .
#   docker run --rm satgate-envoy --help
# Slim, non-root (uid 10001), no compilers or pip caches in the final stage. Envoy itself runs from the
# official envoyproxy/envoy image (docker-compose.yml) or is the Istio sidecar/gateway.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/satgate
WORKDIR /src
COPY pyproject.toml README.md ./
COPY satgate ./satgate
COPY authz_server ./authz_server
COPY mint_server ./mint_server
COPY satgate_api ./satgate_api
COPY satgate_cli ./satgate_cli
COPY satgate_dev ./satgate_dev
COPY satgate_sdk ./satgate_sdk
RUN /opt/satgate/bin/pip install . && /opt/satgate/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 satgate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/satgate --shell /usr/sbin/nologin satgate \
 && mkdir -p /var/lib/satgate/keys /var/lib/satgate/state /etc/satgate \
 && chown -R 10001:10001 /var/lib/satgate \
 && chmod 0700 /var/lib/satgate/keys
COPY --from=build /opt/satgate /opt/satgate
COPY deploy/compose/satgate.yaml /etc/satgate/satgate.yaml
COPY examples/trust-policies.yaml /etc/satgate/trust-policies.yaml
ENV PATH=/opt/satgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SATGATE_CONFIG=/etc/satgate/satgate.yaml
USER 10001:10001
WORKDIR /var/lib/satgate
# 9191 ext_authz gRPC, 9464 authz /metrics, 8081 Mint HTTP/JSON, 8082 Mint gRPC, 8000 demo upstream
EXPOSE 9191 9464 8081 8082 8000
ENTRYPOINT ["satgate"]
CMD ["authz"]
