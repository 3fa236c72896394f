"""pybuild's container networks: a bridge, veth pairs, IPAM, NAT and published ports.

Imported only when a container asks for a bridge network (`--network bridge`,
the default of RUN steps and `pybuild run`); `host` and `none` never import it.

  model.py     pure: names from the container ID, `-p` parsing, subnet choice, /etc files
  ipam.py      address leases on disk under one flock
  links.py     pyroute2: bridge, veth pair, addresses, default route (imported lazily)
  firewall.py  nftables or iptables: masquerade and DNAT (planned as text, applied thinly)
  plumbing.py  set-up and teardown, each all-or-nothing and idempotent
  hook.py      the OCI hook command (`createRuntime` set-up, `poststop` teardown), and
               `hook_config()`, which writes those hooks into a config.json
"""
