# ca-service: API (default), worker, scheduler, init — one image, the command picks the role.
# No `# syntax=` line: BuildKit's built-in frontend (Docker >= 23, buildah, podman) has every
# feature used here (RUN --mount from a stage); the line would fetch a frontend from Docker Hub.
# Build without Docker (buildah/podman): docs/operations.md, deploy/image-smoke.sh.

# --- build: wheels for the project and its runtime dependencies only ---------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ca_service ./ca_service
COPY workers ./workers
COPY config ./config
RUN python -m pip wheel --wheel-dir /wheels .

# --- runtime -------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    CA_DATA_DIR=/var/lib/ca-service \
    CA_HEALTH_FILE=/tmp/ca-service-health.json \
    CA_HEALTH_BIND=127.0.0.1:8081
RUN groupadd --system --gid 10001 ca \
 && useradd --system --uid 10001 --gid ca --home-dir /var/lib/ca-service --shell /usr/sbin/nologin ca \
 && mkdir -p /var/lib/ca-service \
 && chown ca:ca /var/lib/ca-service \
 && chmod 700 /var/lib/ca-service
# the wheels are bind-mounted from the build stage, never copied: no layer keeps them
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels /wheels/ca_service-*.whl
USER 10001:10001
WORKDIR /var/lib/ca-service
VOLUME ["/var/lib/ca-service"]
EXPOSE 8000
# One check for every role: init, serve, worker and scheduler record in $CA_HEALTH_FILE (inside
# the container, not on the shared volume) what they are; `ca-service healthcheck` checks that:
# serve's /healthz, the worker's and the scheduler's own RQ heartbeat, init not stuck on a step.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["ca-service", "healthcheck"]
ENTRYPOINT ["ca-service"]
CMD ["serve", "--bind", "0.0.0.0:8000"]
