"""deploy/k8s: the Kubernetes manifests, and the per-pod graphs that deploy/k8s/graphs.py writes, checked offline.

Guards: every document validates against the Kubernetes 1.30 JSON schemas in strict mode (unknown fields are
errors; the schemas ship in the `kubernetes-validate` package, no network); each pod graph of a 40-meeting,
16-per-pod ConfigMap loads as a stream graph (3 pods: 16, 16, 8 meetings, every edge input with its CURVE key);
the meeting pods' Prometheus annotations, container ports, graph metrics port and probes agree.
"""

from __future__ import annotations

import json
import shlex
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from stream.curve import write_keypair
from stream.graph import load_graph
from stream.paths import REPO_ROOT

K8S = REPO_ROOT / "deploy" / "k8s"
sys.path.insert(0, str(K8S))
from graphs import KEYS, config_map  # noqa: E402 - the generator lives beside the manifests

VERSION = "1.30.0"


def manifests() -> list[dict]:
    docs = [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return [*docs, json.loads(config_map(40, 16, "tcp://room-{i:04d}.edge.example:5600"))]


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_is_valid_kubernetes(doc):
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_pod_graphs_load_with_their_keys(tmp_path):
    write_keypair(tmp_path, "cluster")
    (tmp_path / "authorized").mkdir()
    for i in range(40):
        write_keypair(tmp_path / "rooms", f"room-{i:04d}")
        (tmp_path / "rooms" / f"room-{i:04d}.key").rename(tmp_path / f"room-{i:04d}.key")
    graphs = json.loads(config_map(40, 16, "tcp://room-{i:04d}.edge.example:5600"))["data"]
    sizes = []
    for name, text in graphs.items():
        (tmp_path / name).write_text(text.replace(KEYS, str(tmp_path)))
        graph = load_graph(tmp_path / name)
        sizes.append(len(graph.node("segmentation").inputs))
        assert graph.node("vad").inputs == graph.node("segmentation").inputs
        assert set(graph.curve.servers) == set(graph.node("segmentation").inputs)
    assert sizes == [16, 16, 8]


def test_meeting_pods_scrape_and_probe_what_the_graph_serves():
    sts = next(d for d in manifests() if d["kind"] == "StatefulSet")
    pod = sts["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    graph = json.loads(config_map(1, 16, "tcp://room-{i:04d}.edge.example:5600"))["data"]["stream-meeting-0.toml"]
    graph_port = tomllib.loads(graph)["metrics"]["port"]
    assert int(pod["metadata"]["annotations"]["prometheus.io/port"]) == ports["metrics"] == graph_port
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    health = shlex.split(container["command"][-1])
    assert health[health.index("--health") + 1] == f"0.0.0.0:{ports['health']}"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}

