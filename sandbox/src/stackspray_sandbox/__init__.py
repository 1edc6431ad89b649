"""stackspray's test cloud, beside the product: what runs where a real cloud, Kubernetes and
Kubespray would, for stackspray's own tests (installed by scripts/test and scripts/setup)."""
