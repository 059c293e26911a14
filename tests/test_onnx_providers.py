# Copyright 2026 reasonseg_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""The default ONNX providers (cuda,cpu) fall back to the CPU quietly; a list the user wrote warns."""

import logging

from reasonseg_ros.config import OnnxConfig
from reasonseg_ros.segmenter.ort_runner import choose_providers


def test_default_providers_without_cuda_do_not_warn(caplog):
    with caplog.at_level(logging.WARNING):
        chosen = choose_providers(OnnxConfig().providers, ["AzureExecutionProvider", "CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    assert caplog.records == []


def test_a_written_provider_list_still_warns(caplog):
    with caplog.at_level(logging.WARNING):
        chosen = choose_providers("cuda", ["CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider" in caplog.text


def test_graphs_exported_with_random_weights_say_so():
    from reasonseg_ros.segmenter.exported import ExportedSamSegmenter

    manifest = {"image_size": 256, "channels": 256}
    assert ExportedSamSegmenter(None, None, {**manifest, "weights": "random weights"}).random_weights is True
    assert ExportedSamSegmenter(None, None, {**manifest, "weights": "sam_vit_b_01ec64.pth"}).random_weights is False
