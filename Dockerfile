# One image for the operator and the sidecar: `rolesanywhere-operator` and `rolesanywhere-sidecar` are both on PATH.
# The build stage makes wheels; the final stage installs them with no compiler, no pip cache and no build tools.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY sidecar ./sidecar
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir /wheels/*.whl \
    && pip uninstall -y pip setuptools wheel
# A numeric non-root user, so `runAsNonRoot` can be checked without a passwd lookup; it still gets a
# passwd entry, because kopf names its peering identity after getpass.getuser(), which raises
# KeyError for a uid without one (the operator crashed at start in a real pod).
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'nonroot:x:65532:' >> /etc/group
USER 65532:65532
ENTRYPOINT ["rolesanywhere-sidecar"]
CMD ["--help"]
