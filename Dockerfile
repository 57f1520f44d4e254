# One image for the operator and the sidecar: `rolesanywhere-operator` and `rolesanywhere-sidecar` are both on PATH.
# The build stage makes the project's wheel; the final stage installs it with no compiler, no pip cache and no
# build tools. Every third-party file comes from a lock (make lock) and is checked against its sha256, so a
# changed or newer upstream release cannot slip into the image; nothing is resolved at build time.
# The lock is resolved for this Python version (hack/lock.sh reads it from this line).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md requirements-build.lock ./
COPY operator ./operator
COPY sidecar ./sidecar
# The build backend from its lock, so the wheel is built without fetching an unchecked setuptools.
RUN pip install --no-cache-dir --require-hashes --no-deps --only-binary :all: -r requirements-build.lock \
    && pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The dependencies exactly as locked, as wheels only (nothing compiles here); the project with --no-deps, so
# nothing unlocked comes in; pip check fails the build when the lock misses a dependency.
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --require-hashes --no-deps --only-binary :all: -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-deps --no-index /wheels/*.whl \
    && pip check \
    && pip uninstall -y pip setuptools wheel
# A numeric non-root user, so `runAsNonRoot` can be checked without a passwd lookup; it still gets a
# passwd entry, because kopf names its peering identity after getpass.getuser(), which raises
# KeyError for a uid without one (the operator crashed at start in a real pod).
RUN echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'nonroot:x:65532:' >> /etc/group
USER 65532:65532
ENTRYPOINT ["rolesanywhere-sidecar"]
CMD ["--help"]
