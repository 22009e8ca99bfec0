"""msport audit's console: every kind of finding is shown, grouped, with its counts (issue 21, item 14).

The legacy ResNet's init findings (one distinct reason per parameter: each std differs) used to fill
the console's lines and hide the weight-decay and loss findings behind "... 11 more distinct findings".
"""

import argparse
import io
import re

from msport.diagnose.report import DiagnosisResult, emit


def _record(check, name, reason):
    return {"check": check, "name": name, "flagged": True, "reason": reason}


def test_every_kind_of_finding_is_shown_grouped_with_counts():
    records = [_record("init", f"layer{i}.conv.weight", f"std 0.01{i} is 0.{i}x the reference") for i in range(20)]
    records += [_record("weight_decay", f"bn{i}.gamma", "weight decay 0, expected 0.0005") for i in range(24)]
    records.append(_record("loss", "SoftmaxCrossEntropyWithLogits", "expects one-hot labels"))
    out = io.StringIO()
    args = argparse.Namespace(top=None, only_flagged=True, json=None, report=None)
    assert emit(DiagnosisResult("audit", records, {}), args, columns=[], out=out) == 1
    text = out.getvalue()
    assert "45 flagged, 3 kinds: init 20, weight_decay 24, loss 1" in text
    assert "  init: 20 flagged, 20 distinct findings" in text
    shown = len(re.findall(r"FLAGGED layer\d+\.conv\.weight", text))
    assert 1 <= shown < 20 and f"... {20 - shown} more distinct init findings (see --json)" in text
    assert "  weight_decay: 24 flagged, 1 distinct finding" in text
    assert "FLAGGED bn0.gamma (and 23 more: bn1.gamma, bn2.gamma, bn3.gamma, ...): weight decay 0" in text
    assert "  loss: 1 flagged, 1 distinct finding\n    FLAGGED SoftmaxCrossEntropyWithLogits: expects one-hot" in text
