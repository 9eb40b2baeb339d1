"""Model compression: dynamic int8 quantization, magnitude / attention-head pruning, distillation students."""
