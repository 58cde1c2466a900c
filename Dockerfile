# syntax=docker/dockerfile:1

# Build a wheel in a throwaway stage so the runtime image holds no build tools or sources.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels /wheels/btcturk_exporter-*.whl

FROM python:3.12-slim
LABEL org.opencontainers.image.title="btcturk-exporter" \
      org.opencontainers.image.description="Prometheus exporter for BTCTurk account balances" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
 && rm -rf /wheels \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter \
 && mkdir -p /var/lib/btcturk-exporter \
 && chown 10001:10001 /var/lib/btcturk-exporter
# Configuration and keys are mounted at run time, never baked in:
#   -v ./config.yml:/etc/btcturk-exporter/config.yml:ro  --config.file=/etc/btcturk-exporter/config.yml
#   or BTCTURK_PUBLIC_KEY_FILE / BTCTURK_PRIVATE_KEY_FILE pointing at mounted secrets.
#   TLS and basic auth: mount a web config and add --web.config.file=/etc/btcturk-exporter/web.yml
# One malloc arena per scraper thread keeps freed scrape buffers resident; two bound it (RSS under
# 50 concurrent scrapers: ~100 MiB with the default, ~66 MiB with 2, same throughput).
ENV MALLOC_ARENA_MAX=2
# The activity ledger (ledger.db). A copy of history the exchange keeps: losing it only costs a new
# backfill from the API, but a volume spares that on every restart.
VOLUME /var/lib/btcturk-exporter
USER 10001:10001
EXPOSE 9788
# /healthz stays open when basic auth is on. No port here: the probe reads the exporter's own
# --web.listen-address and --web.config.file from /proc, so it follows `docker run IMAGE --web...`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-m", "exporter.healthcheck"]
# In the entrypoint, not CMD, so that arguments given to `docker run IMAGE ...` keep it.
ENTRYPOINT ["btcturk-exporter", "--storage.path=/var/lib/btcturk-exporter"]
