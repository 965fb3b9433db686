# Writes ~/registry.env: this session's registry (REGISTRY, registry:5050), namespace (NS, the
# user the Registry panel shows) and password (PASSWORD, the panel's too), which the step's
# commands use after `. ~/registry.env`. Nothing else: the engine is the reader's.
{
  echo "REGISTRY=${PLAYGROUND_REGISTRY:?}"
  echo "NS=${PLAYGROUND_REGISTRY_USER:?}"
  echo "PASSWORD=${PLAYGROUND_REGISTRY_PASSWORD:?}"
} > /root/registry.env
chmod 600 /root/registry.env
