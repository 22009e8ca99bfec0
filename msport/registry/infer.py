"""Parameter names and layouts: torch <-> MindSpore layout of one parameter, and a layer's type
inferred from its parameter names and ranks when no model is given."""

from msport.errors import UserError
from msport.registry.table import _BY_NAME


def ms_layout_shape(param, torch_shape):
    """The MindSpore shape of a parameter shaped ``torch_shape`` in torch (every layout change is a reshape,
    so a checkpoint's tensors convert by shape alone, without reading them)."""
    torch_shape = tuple(torch_shape)
    return torch_shape[:2] + (1,) + torch_shape[2:] if param.layout == "unsqueeze2" else torch_shape


def to_ms_layout(param, array):
    return array.reshape(ms_layout_shape(param, array.shape)) if param.layout == "unsqueeze2" else array


def to_torch_layout(param, array):
    if param.layout == "unsqueeze2":
        if array.ndim != 4 or array.shape[2] != 1:
            raise UserError(f"expected a MindSpore 1-d convolution weight shaped (out, in, 1, k), found {array.shape}")
        return array.reshape(array.shape[:2] + array.shape[3:])
    return array


def torch_layout_shape(param, ms_shape):
    ms_shape = tuple(ms_shape)
    return ms_shape[:2] + ms_shape[3:] if param.layout == "unsqueeze2" and len(ms_shape) == 4 else ms_shape


# Without a model, a layer's type is inferred from its parameter names and ranks alone. Only what
# names and ranks determine is inferred; the rest maps by identical name, and a model that
# disagrees then fails to load with the names in the message (the conversion report says so).
def infer_from_names(shapes, side):
    """The entry one layer's parameters identify without a model, or ``None``.

    ``shapes``: ``{parameter name relative to the layer: shape}``, from ``side`` (``"torch"``/``"ms"``).
    """
    suffixes = set(shapes)
    ranks = {name: len(shape) for name, shape in shapes.items()}
    if side == "torch":
        if "running_mean" in suffixes:
            return _BY_NAME["BatchNorm2d"]
        if suffixes == {"weight", "bias"} and tuple(shapes["weight"]) == tuple(shapes["bias"]):
            return _BY_NAME["LayerNorm"]
        if "weight" in suffixes and ranks["weight"] == 3 and suffixes <= {"weight", "bias"}:
            return _BY_NAME["Conv1d"]
        return None
    if "moving_mean" in suffixes:
        return _BY_NAME["BatchNorm2d"]
    if "gamma" in suffixes or "beta" in suffixes:
        return _BY_NAME["LayerNorm"]
    if "embedding_table" in suffixes:
        return _BY_NAME["Embedding"]
    if suffixes == {"w"}:
        return _BY_NAME["PReLU"]
    return None
