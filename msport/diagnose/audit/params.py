"""The ``parameters`` check: every torch parameter/buffer has a MindSpore twin of the same shape."""



from msport.diagnose.audit.records import record as _record


def parameter_records(torch_state, ms_values, pairing):
    records = []
    for name, value in torch_state.items():
        other = ms_values.get(name)
        if other is None:
            records.append(_record("parameters", name, _shape_text(value), "missing",
                                   [f"{name} has no MindSpore twin"]))
        elif other.size != value.size or _squeezed(other.shape) != _squeezed(value.shape):
            records.append(_record("parameters", name, _shape_text(value), _shape_text(other),
                                   [f"shape {value.shape} vs {other.shape}"]))
    for ms_name in pairing.only_ms:
        records.append(_record("parameters", ms_name, "missing", "",
                               [f"MindSpore's {ms_name} has no torch twin"]))
    return records


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def _shape_text(value):
    return "shape (" + ",".join(str(d) for d in value.shape) + ")"
