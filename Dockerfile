# One image for all five Strata services; pick the service with the command:
#   docker run strata serve pricing
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STRATA_HTTP__HOST=0.0.0.0 \
    STRATA_HTTP__PORT=8000

WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir . \
    && useradd --system --create-home --uid 10001 --shell /usr/sbin/nologin strata \
    && mkdir -p /data && chown strata /data

USER strata
WORKDIR /data
EXPOSE 8000
ENTRYPOINT ["strata"]
CMD ["serve", "tiering"]
