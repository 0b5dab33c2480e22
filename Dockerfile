# omniroute: slim, non-root, with a health check. Build: docker build -t omniroute .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY router ./router
COPY connectors ./connectors
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMNIROUTE_HTTP_HOST=0.0.0.0 \
    OMNIROUTE_HTTP_PORT=8080 \
    OMNIROUTE_DATA_DIR=/var/lib/omniroute \
    OMNIROUTE_CONFIG=/etc/omniroute/omniroute.toml
COPY --from=build /install /usr/local
COPY config/omniroute.example.toml /etc/omniroute/omniroute.toml
RUN useradd --system --uid 10001 --home-dir /var/lib/omniroute --create-home omniroute
USER omniroute
# data.dir: the embedded store and ledger, and attachment contents (data.attachments_dir);
# share it (or point attachments_dir at shared storage) between scaled-out processes
VOLUME ["/var/lib/omniroute"]
# 8080: the API and provider webhooks; 2525: the SMTP listener, when [connectors.smtp] is on
EXPOSE 8080 2525
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['OMNIROUTE_HTTP_PORT']}/healthz\", timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["omniroute"]
CMD ["serve"]
