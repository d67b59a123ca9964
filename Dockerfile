# The image of every pod of a KubeRay cluster (kuberay/rayjob.yaml, docs/kubernetes.md): Ray's GPU
# image of the Ray version the project resolves to, with the project installed once, at build time,
# instead of on every node start. tests/deploy/test_rayjob_yaml.py checks this FROM against the installed Ray.
#
#   docker build -t YOUR-REGISTRY/dcgan-search:2.60.0-py311-gpu .
#   docker push YOUR-REGISTRY/dcgan-search:2.60.0-py311-gpu
FROM rayproject/ray:2.60.0-py311-gpu

WORKDIR /home/ray/dcgan-search
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users dcgan ./dcgan
COPY --chown=ray:users experiment ./experiment
COPY --chown=ray:users search ./search
COPY --chown=ray:users spaces ./spaces
COPY --chown=ray:users reports ./reports
# Ray pinned to the image's own: the project's "ray>=2.50" must not move it. PyTorch comes from
# PyPI's default Linux wheel, built with CUDA; boto3 for the s3:// storage's credentials chain.
RUN pip install --no-cache-dir . "ray[default,tune,train]==2.60.0" boto3 \
    && python -c "import dcgan, search.run, reports.build; import ray; assert ray.__version__ == '2.60.0'"
