# syntax=docker/dockerfile:1
# cr-magento-gateway: `crmagento run` (gateway + worker; embedded Redis under /data unless CRMAGENTO_REDIS_URL
# is set). Needs CRMAGENTO_CR_WEBHOOK_SECRETS, CRMAGENTO_MAGENTO_WEBHOOK_SECRETS and CRMAGENTO_ADMIN_TOKENS.
#
#   docker build -t crmagento .
#   docker run -p 8080:8080 -v crmagento-data:/data --env-file crmagento.env crmagento
#   docker run ... crmagento crmagento worker      # other commands: serve, worker, sandbox, ...
#   docker run --rm -it -p 8080:8080 crmagento crmagento demo --keep-running   # what `make demo` runs
#
# tests/test_dockerfile.py replays the builder's COPY + `pip install .` outside Docker and runs that install's
# `crmagento demo` and this HEALTHCHECK; `make lint` runs hadolint on this file.

# ---- builder: install the project and its dependencies into a self-contained venv ------------------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY crmagento ./crmagento
COPY crmcore ./crmcore
COPY gateway ./gateway
COPY workers ./workers
COPY sandbox ./sandbox
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/crmagento --help > /dev/null

# ---- runtime: the venv only, as an unprivileged user ------------------------------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="cr-magento-gateway" \
      org.opencontainers.image.description="Keeps a Magento 2 store in step with Cloud Retailer"

RUN groupadd --system --gid 10001 crmagento \
    && useradd --system --uid 10001 --gid crmagento --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin crmagento \
    && mkdir -p /data \
    && chown crmagento:crmagento /data

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CRMAGENTO_HOST=0.0.0.0 \
    CRMAGENTO_PORT=8080 \
    CRMAGENTO_DATA_DIR=/data

WORKDIR /app
USER 10001:10001
VOLUME /data
EXPOSE 8080

# slim has no curl: python's urllib. Any error (refused, timeout, non-2xx) exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CRMAGENTO_PORT', '8080'), timeout=4)"]

CMD ["crmagento", "run"]
