"""Prices houses on a running `appraise serve` with a stock Open Inference Protocol client.

The client is NVIDIA's `tritonclient` (PyPI: `pip install "tritonclient[http]" numpy`), written
for Triton and KServe, not for appraise: if it works unchanged, appraise speaks the protocol.

    python tools/oip_client_check.py 127.0.0.1:8080 MODEL '[{"bedrooms": 3, ...}, ...]'

Checks liveness, readiness, server and model metadata, then asks for the prices twice, once
with JSON tensors and once with binary tensors (the protocol's binary data extension), and
prints one JSON line: {"json": [prices...], "binary": [prices...], "outputs": [names...]}.
"""

import json
import sys

import numpy as np
import tritonclient.http as httpclient


def main() -> None:
    url, model, houses = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    client = httpclient.InferenceServerClient(url=url)
    assert client.is_server_live(), "server not live"
    assert client.is_server_ready(), "server not ready"
    assert client.is_model_ready(model), "model not ready"
    server = client.get_server_metadata()
    assert server["name"] == "appraise", server
    meta = client.get_model_metadata(model)
    assert meta["name"] == model, meta

    def ask(binary: bool) -> list:
        inputs = []
        for spec in meta["inputs"]:
            name, datatype = spec["name"], spec["datatype"]
            values = [house.get(name) for house in houses]
            if datatype == "BYTES":
                array = np.array(
                    [b"" if v is None else str(v).encode() for v in values], dtype=np.object_
                )
            else:
                array = np.array(
                    [np.nan if v is None else float(v) for v in values], dtype=np.float64
                )
            tensor = httpclient.InferInput(name, [len(houses)], datatype)
            tensor.set_data_from_numpy(array, binary_data=binary)
            inputs.append(tensor)
        outputs = [httpclient.InferRequestedOutput("predicted_price", binary_data=binary)]
        result = client.infer(model, inputs, outputs=outputs, request_id="check")
        return result.as_numpy("predicted_price").tolist()

    full = client.infer(
        model,
        [
            _tensor(spec, houses)
            for spec in meta["inputs"]
        ],
    )
    names = [o["name"] for o in full.get_response()["outputs"]]
    print(json.dumps({"json": ask(False), "binary": ask(True), "outputs": names}))


def _tensor(spec: dict, houses: list):
    name, datatype = spec["name"], spec["datatype"]
    values = [house.get(name) for house in houses]
    tensor = httpclient.InferInput(name, [len(houses)], datatype)
    if datatype == "BYTES":
        tensor.set_data_from_numpy(np.array([str(v).encode() for v in values], dtype=np.object_))
    else:
        tensor.set_data_from_numpy(np.array([float(v) for v in values], dtype=np.float64))
    return tensor


if __name__ == "__main__":
    main()
