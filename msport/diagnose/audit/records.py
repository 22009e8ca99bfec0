"""One audit record: what every check returns, in torch naming, with a ``check`` field."""

from collections import OrderedDict


def record(check, name, torch_text, ms_text, reasons, **figures):
    record = OrderedDict([("check", check), ("name", name), ("torch", torch_text), ("mindspore", ms_text)])
    record.update(figures)
    reasons = [r for r in reasons if r]
    record["flagged"] = bool(reasons)
    record["reason"] = "; ".join(reasons) if reasons else None
    return record
