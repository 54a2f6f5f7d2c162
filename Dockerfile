# The tickwatch image: one image for `tickwatch topics`, `worker`, `replay` and `tail`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY streams ./streams
COPY schemas ./schemas
COPY alerts ./alerts
RUN pip install --no-cache-dir -c constraints.txt .
USER nobody
ENTRYPOINT ["tickwatch"]
CMD ["worker"]
