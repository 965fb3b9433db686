# Writes ~/registry.env: this session's registry (REGISTRY, registry:5050) and namespace (NS, the
# user the Registry panel shows), which the step's commands use after `. ~/registry.env`. The
# password is not written: the reader types it at docker login, from the Registry panel.
{
  echo "REGISTRY=${PLAYGROUND_REGISTRY:?}"
  echo "NS=${PLAYGROUND_REGISTRY_USER:?}"
} > /root/registry.env
