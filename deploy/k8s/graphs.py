"""The ConfigMap "stream-graphs" for the meeting StatefulSet: one graph per pod, `--per-pod` meetings each.

Meeting i is captured at the edge by a capture-only graph whose output binds `--edge` (formatted with i) with
CURVE; pod k = i // per-pod subscribes to its meetings' edges from one segmentation node (windows of all its
streams batched, max_batch 8) and one VAD node, clusters them in one diarization node and publishes events to the
MQTT Service. Keys (Secret "stream-curve", copied to /etc/stream/keys with mode 0600 at pod start): the cluster's
keypair `cluster.key_secret` (the edges authorize `cluster.key`) and each edge's public key `room-<i>.key`.

    python deploy/k8s/graphs.py --meetings 1000 --per-pod 16 > graphs.yaml   # 63 pods; kubectl apply -f graphs.yaml
    kubectl scale statefulset stream-meeting --replicas 63
"""

from __future__ import annotations

import argparse
import json
import math

KEYS = "/etc/stream/keys"


def pod_graph(pod: int, meetings: range, edge: str) -> str:
    """The graph TOML of pod `pod` serving `meetings`."""
    endpoints = [edge.format(i=i) for i in meetings]
    inputs = ", ".join(json.dumps(e) for e in endpoints)
    servers = ", ".join(f'{json.dumps(e)} = "{KEYS}/room-{i:04d}.key"' for i, e in zip(meetings, endpoints))
    return f"""[graph]
name = "stream-meeting-{pod}"
checkpoint_s = 1.0
heartbeat_s = 0.5
hwm = 5000

[metrics]
host = "0.0.0.0"   # scraped by Prometheus (pod annotations in meeting.yaml)
port = 9464

[curve]
secret_key = "{KEYS}/cluster.key_secret"
authorized = "{KEYS}/authorized"   # empty: this pod serves no tcp:// output
servers = {{ {servers} }}

[[nodes]]
name = "segmentation"
kind = "segmentation"
inputs = [{inputs}]
config = {{ max_batch = 8, max_wait_ms = 100.0 }}

[[nodes]]
name = "diarization"
kind = "diarization"
inputs = ["segmentation"]
config = {{ latency = 0.5, rttm_dir = "/var/lib/stream" }}

[[nodes]]
name = "vad"
kind = "vad"
inputs = [{inputs}]

[[sinks]]
kind = "mqtt"
url = "mqtt://mqtt:1883"
stream = "stream-meeting-{pod}"
"""


def config_map(meetings: int, per_pod: int, edge: str) -> str:
    """The ConfigMap as YAML (JSON is YAML; one key `stream-meeting-<k>.toml` per pod)."""
    pods = math.ceil(meetings / per_pod)
    data = {f"stream-meeting-{k}.toml": pod_graph(k, range(k * per_pod, min(meetings, (k + 1) * per_pod)), edge)
            for k in range(pods)}
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "stream-graphs", "labels": {"app.kubernetes.io/name": "stream"}}, "data": data}, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meetings", type=int, default=32)
    parser.add_argument("--per-pod", type=int, default=16, help="meetings per pod (docs/scaling.md)")
    parser.add_argument("--edge", default="tcp://room-{i:04d}.edge.example:5600", help="edge output of meeting i")
    args = parser.parse_args()
    print(config_map(args.meetings, args.per_pod, args.edge))


if __name__ == "__main__":
    main()
