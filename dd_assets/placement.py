"""Op tags that tell an executor which steps want a GPU, so that it can place them.

The steps that run the model over many tokens (the activation scan, the Neuroscope second pass,
Neuron2Graph) carry `GPU_TAGS`:

- ``deepdecipher/accelerator: gpu``: a plain marker for any executor or run-queue rule;
- ``dagster-k8s/config``: read by ``k8s_job_executor`` (Dagster's Helm chart), which then asks
  Kubernetes for one ``nvidia.com/gpu`` and a GPU node (docs/deploy.md);
- ``dagster-celery/queue``: read by the Celery executor, only when ``DEEPDECIPHER_GPU_QUEUE``
  names the queue that GPU workers listen on (``celery worker -Q gpu``). Off by default: with no
  worker on that queue these steps would wait forever.
"""

from __future__ import annotations

import json
import os

K8S_GPU = {
    "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}},
    "pod_spec_config": {
        "node_selector": {"deepdecipher/gpu": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
}


def gpu_tags() -> dict[str, str]:
    tags = {"deepdecipher/accelerator": "gpu", "dagster-k8s/config": json.dumps(K8S_GPU)}
    queue = os.environ.get("DEEPDECIPHER_GPU_QUEUE", "").strip()
    if queue:
        tags["dagster-celery/queue"] = queue
    return tags


GPU_TAGS = gpu_tags()
