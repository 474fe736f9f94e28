# Production image: slim Python, non-root, the same gunicorn command as `splitwerk serve`.

# The dashboard's chart library comes from npm (dashboard/package-lock.json), served by us.
FROM node:20-slim AS dashboard-assets
WORKDIR /build
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SPLITWERK_SNIPPET_PATH=/app/sdk/js/splitwerk.min.js
WORKDIR /app
COPY setup.cfg pyproject.toml README.md constraints.txt ./
COPY server ./server
COPY dashboard ./dashboard
COPY --from=dashboard-assets /build/node_modules/chart.js/dist/chart.umd.js ./dashboard/static/vendor/chart.umd.js
COPY sdk/js ./sdk/js
# the server imports the SDK's pure core, so the SDK is installed from this checkout first
COPY sdk/setup.cfg sdk/pyproject.toml sdk/README.md ./sdk/
COPY sdk/splitwerk ./sdk/splitwerk
# the versions the suite passed with (constraints.txt)
RUN pip install -c constraints.txt ./sdk . && useradd --create-home --uid 10001 splitwerk
USER splitwerk

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
# SPLITWERK_REDIS_URL, SPLITWERK_SECRET_KEY and SPLITWERK_TOKENS must be set (see README).
# `splitwerk serve` runs gunicorn with the settings' workers, threads and keep-alive
# (SPLITWERK_WORKERS, SPLITWERK_THREADS, SPLITWERK_KEEPALIVE): one command, not two to keep equal.
ENV SPLITWERK_HOST=0.0.0.0 SPLITWERK_PORT=8000
CMD ["splitwerk", "serve"]
