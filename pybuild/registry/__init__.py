"""pybuild's registry side: the OCI distribution-spec v2 client and what is built on it.

Modules (each imported only by the commands that talk to a registry, so a build with no
registry reference never imports urllib3):
  reference  image references (`[host[:port]/]path[:tag][@digest]`) normalised as docker does; pure
  authfile   credentials in ~/.docker/config.json, $REGISTRY_AUTH_FILE or podman's auth.json
  transport  HTTP over urllib3: scheme choice, TLS, retries with backoff, WWW-Authenticate (Bearer, Basic)
  client     the v2 API: manifests, blobs (HEAD, ranged GET, monolithic/chunked upload, mount)
  ingest     resumable, verified downloads into the store (O_EXCL|O_NOFOLLOW partial files, rename)
  pull       reference -> image in the store (index -> platform, concurrent layers, tag last)
  push       image in the store -> registry (HEAD skip, mount, upload, manifest last)
  progress   per-blob progress: bars on a terminal, plain lines otherwise

Errors are RegistryError (a PybuildError): one line naming the reference and the reason.
"""
