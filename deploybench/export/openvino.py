"""ONNX -> OpenVINO IR (model.<prec>.xml/.bin), weights kept as they are in the ONNX file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def to_ir(src: Path, xml: Path) -> None:
    """Convert `src` ONNX to IR at `xml` (+ .bin); compress_to_fp16=False so fp32 stays fp32. Atomic: the .bin
    is moved in first, the .xml (which marks the pair complete) last."""
    import openvino as ov

    xml = Path(xml)
    with tempfile.TemporaryDirectory(dir=xml.parent, prefix=".ir.") as tmpdir:
        tmp_xml = Path(tmpdir) / xml.name
        ov.save_model(ov.convert_model(str(src)), str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_xml.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp_xml, xml)
