"""fp16 weights and compute for an exported float32 ONNX graph, with float32 inputs and outputs
(issue 13, item 1): the engine's tensors and the unipic-onnx/1 contract stay float32; a Cast at each
float input and output is the only change at the boundary.

What stays float32 inside: everything computed from integers alone (a Cast of an int tensor to float
and the elementwise math after it, with its constants): RoPE angles (position ids pass 2048, where
fp16 cannot hold every integer), the diffusion head's timestep sinusoid, and Resize's scales, which
onnxruntime wants in float32. The first fp16 consumer of such a tensor gets a Cast.
Torch 1.13 cannot trace a half model on the CPU (no half GEMM), hence a rewrite of the graph.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
NON_FLOAT_OUT = {"Shape", "Size", "NonZero", "ArgMax", "ArgMin", "Equal", "Less", "Greater", "LessOrEqual",
                 "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf"}
# ops that may carry a float32 region forward (elementwise math and reshaping)
KEEP_OPS = {"Mul", "Add", "Sub", "Div", "Neg", "Pow", "Exp", "Cos", "Sin", "Concat", "Unsqueeze", "Squeeze",
            "Reshape", "Expand", "Transpose", "Slice", "Gather", "Identity", "Flatten", "Tile"}
FP32_INPUTS = {"Resize": {1, 2}}  # roi, scales


def _float_outputs(node, floats):
    if node.op_type in NON_FLOAT_OUT:
        return False
    if node.op_type == "Cast":
        return helper.get_attribute_value(next(a for a in node.attribute if a.name == "to")) == F32
    if node.op_type == "Constant":
        a = next(a for a in node.attribute if a.name == "value")
        return a.t.data_type == F32
    if node.op_type == "ConstantOfShape":
        a = [a for a in node.attribute if a.name == "value"]
        return not a or a[0].t.data_type == F32
    if node.op_type == "Where":
        return node.input[1] in floats or node.input[2] in floats
    return any(i in floats for i in node.input)


def _constants_to_initializers(g):
    keep = []
    for n in g.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(n.attribute[0].t)
            t.name = n.output[0]
            g.initializer.append(t)
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    _constants_to_initializers(g)
    inits = {t.name: t for t in g.initializer}
    floats = {i.name for i in g.input if i.type.tensor_type.elem_type == F32}
    floats |= {n for n, t in inits.items() if t.data_type == F32}
    keep32 = set()  # float32 tensors computed from integers alone
    for n in g.node:  # exporter output is topologically sorted
        if _float_outputs(n, floats):
            floats.update(o for o in n.output if o)
        float_in = [i for i in n.input if i in floats]
        if n.op_type == "Cast" and n.output[0] in floats and n.input[0] not in floats:
            keep32.add(n.output[0])
        elif n.op_type in KEEP_OPS and float_in and any(i in keep32 for i in float_in) \
                and all(i in keep32 or i in inits for i in float_in):
            keep32.update(o for o in n.output if o in floats)
    # which initializers must stay float32, which become float16 (both when used both ways)
    need32, need16 = set(), set()
    for n in g.node:
        in32 = n.output and n.output[0] in keep32
        for pos, i in enumerate(n.input):
            if i in inits and inits[i].data_type == F32:
                (need32 if in32 or pos in FP32_INPUTS.get(n.op_type, ()) else need16).add(i)
    new_inits = []
    for t in g.initializer:
        if t.data_type != F32:
            new_inits.append(t)
            continue
        if t.name in need32 or t.name not in need16:
            new_inits.append(t)
        if t.name in need16:
            h = numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16),
                                        t.name if t.name not in need32 else t.name + "__fp16")
            new_inits.append(h)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    rename16 = {n: n + "__fp16" for n in need16 & need32}
    # graph inputs: cast to fp16 once; graph outputs: produced in fp16, cast back
    pre, post, casts = [], [], {}
    for i in g.input:
        if i.type.tensor_type.elem_type == F32:
            rename16[i.name] = i.name + "__fp16"
            pre.append(helper.make_node("Cast", [i.name], [i.name + "__fp16"], to=F16, name=i.name + "__to16"))
    out_names = {o.name for o in g.output if o.type.tensor_type.elem_type == F32}
    nodes = []
    for n in g.node:
        in32 = n.output and n.output[0] in keep32
        for pos, i in enumerate(n.input):
            if not i:
                continue
            fp32_slot = in32 or pos in FP32_INPUTS.get(n.op_type, ())
            if i in keep32 and not fp32_slot:
                if i not in casts:  # a float32 region ends here
                    casts[i] = i + "__fp16"
                    nodes.append(helper.make_node("Cast", [i], [casts[i]], to=F16, name=i + "__to16"))
                n.input[pos] = casts[i]
            elif i in rename16 and not fp32_slot:
                n.input[pos] = rename16[i]
        if n.op_type == "Cast" and n.output[0] in floats and n.output[0] not in keep32:
            for a in n.attribute:
                if a.name == "to":
                    a.i = F16
        if n.op_type == "ConstantOfShape":
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == F32:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))
        for k, o in enumerate(n.output):
            if o in out_names:
                n.output[k] = o + "__out16"
                post.append(helper.make_node("Cast", [o + "__out16"], [o], to=F32, name=o + "__to32"))
        nodes.append(n)
    # inputs of nodes that read a graph output inside the graph
    for n in nodes:
        for pos, i in enumerate(n.input):
            if i in out_names:
                n.input[pos] = i + "__out16"
    del g.node[:]
    g.node.extend(pre + nodes + post)
    del g.value_info[:]
    return m
