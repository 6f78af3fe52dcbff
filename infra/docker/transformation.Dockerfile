# Code location `transformation`: its own dependency group from the committed lock, nothing else.
# Built by CI (.github/workflows/ci.yml) from the repository root:
#   docker build -f infra/docker/transformation.Dockerfile -t landfall-transformation .
# tests/infra/test_location_images.py checks that the install step below is the one proven
# by building a venv from these groups alone and loading the location's definitions in it.
FROM python:3.11-slim

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH \
    LANDFALL_ENV=prod \
    LANDFALL_DBT_TARGET=prod \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /opt/landfall

# Dependencies first (cached while only code changes): the location's group plus `prod`
# (dagster-postgres for the instance storage).
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-default-groups --group transformation --group prod --no-install-project

# the project's packages (pyproject's wheel); the location imports only its own closure
COPY landing/ landing/
COPY sensors/ sensors/
COPY ml/ ml/
COPY common/ common/
COPY devstack/ devstack/
COPY orchestration/ orchestration/
COPY transforms/ transforms/
RUN uv sync --locked --no-default-groups --group transformation --group prod

# The dbt manifest is built into the image (dbt parse needs no warehouse connection), so the
# code server never parses on load. The Snowflake values here are placeholders for parsing only.
RUN SNOWFLAKE_ACCOUNT=parse SNOWFLAKE_USER=parse SNOWFLAKE_PASSWORD=parse SNOWFLAKE_ROLE=parse \
    SNOWFLAKE_WAREHOUSE=parse SNOWFLAKE_DATABASE=parse SNOWFLAKE_SCHEMA=parse \
    dbt parse --project-dir transforms --profiles-dir transforms --target prod \
    --target-path target/prod --quiet
RUN mkdir -p $DAGSTER_HOME
EXPOSE 3030
CMD ["dagster", "api", "grpc", "-m", "orchestration.transformation", "-h", "0.0.0.0", "-p", "3030"]
