# The tickwatch image: one image for `tickwatch topics`, `worker`, `gateway`, `replay`, `users`...
FROM python:3.11-slim
WORKDIR /app
# Logs reach `docker compose logs` line by line, not in 8 KiB blocks.
ENV PYTHONUNBUFFERED=1
COPY pyproject.toml constraints.txt README.md ./
COPY streams ./streams
COPY schemas ./schemas
COPY alerts ./alerts
RUN pip install --no-cache-dir -c constraints.txt . \
    && mkdir /var/lib/tickwatch && chown nobody:nogroup /var/lib/tickwatch
USER nobody
# Faust makes a data directory (<app id>-data) in the working directory as a worker
# starts: it must be one the user may write (/app is root's).
WORKDIR /var/lib/tickwatch
# The gateway (8080), a worker's metrics (9108), the gateway's metrics (9109).
EXPOSE 8080 9108 9109
ENTRYPOINT ["tickwatch"]
CMD ["worker"]
