# syntax=docker/dockerfile:1
# ca-service: API (default), worker, scheduler, init — one image, the command picks the role.

# --- build: wheels for the project and its runtime dependencies only ---------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ca_service ./ca_service
COPY workers ./workers
COPY config ./config
RUN pip wheel --wheel-dir /wheels .

# --- runtime -------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    CA_DATA_DIR=/var/lib/ca-service
RUN groupadd --system --gid 10001 ca \
 && useradd --system --uid 10001 --gid ca --home-dir /var/lib/ca-service --shell /usr/sbin/nologin ca \
 && mkdir -p /var/lib/ca-service \
 && chown ca:ca /var/lib/ca-service \
 && chmod 700 /var/lib/ca-service
# the wheels are bind-mounted from the build stage, never copied: no layer keeps them
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/ca_service-*.whl
USER 10001:10001
WORKDIR /var/lib/ca-service
VOLUME ["/var/lib/ca-service"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["ca-service"]
CMD ["serve", "--bind", "0.0.0.0:8000"]
