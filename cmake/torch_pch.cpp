// cmake/torch_pch.cpp: the one translation unit that builds the LibTorch precompiled header.
// Targets that need LibTorch link torch_pch and reuse its PCH instead of parsing <torch/torch.h> again.
