// model/autocast.h: the training precision of every trainer (distill train, distill pretrain) in one place:
// bf16 autocast on CUDA and plain fp32 on the CPU by default, fp32 on CUDA on request (`train --precision fp32`).
// A scope object, so the cast cache never outlives the step.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/Device.h>

#include <string>

#include "common/errors.h"

namespace distill::model {

// The precision a trainer runs at. Its checkpoints record precision_name(): a resume must match it.
enum class Precision { fp32, bf16_autocast };

inline const char* precision_name(Precision p) { return p == Precision::bf16_autocast ? "bf16-autocast" : "fp32"; }

// The precision `requested` on device `d`: "auto" is bf16 autocast on CUDA and fp32 on the CPU; "bf16" is bf16
// autocast (CUDA only: the CPU trainers are fp32); "fp32" is fp32 anywhere. Throws InputError (exit 2) with a
// message that says what is accepted, as parse_device does for --device.
inline Precision training_precision(const std::string& requested, const c10::Device& d) {
  if (requested == "fp32") return Precision::fp32;
  if (requested == "auto") return d.is_cuda() ? Precision::bf16_autocast : Precision::fp32;
  if (requested == "bf16") {
    if (!d.is_cuda()) throw InputError("--precision bf16: bf16 autocast is for CUDA; on the CPU use fp32 or auto");
    return Precision::bf16_autocast;
  }
  throw InputError("--precision '" + requested + "': expected auto, bf16 or fp32");
}

// bf16 autocast on CUDA for the forward and backward of a step (matmuls in bf16, reductions and the loss in
// fp32, as torch.autocast does) when `precision` is bf16_autocast; nothing otherwise. With activation checkpointing
// the cast cache is off: the no-grad forward would otherwise cache weight casts without a gradient history,
// and the recomputation in backward would reuse them and lose the weights' gradients (pytorch#112583).
class BF16Autocast {
 public:
  BF16Autocast(Precision precision, bool checkpointing) : on_(precision == Precision::bf16_autocast) {
    if (!on_) return;
    was_ = at::autocast::is_autocast_enabled(at::kCUDA);
    cache_was_ = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    if (checkpointing) at::autocast::set_autocast_cache_enabled(false);
  }
  ~BF16Autocast() {
    if (!on_) return;
    at::autocast::set_autocast_enabled(at::kCUDA, was_);
    at::autocast::set_autocast_cache_enabled(cache_was_);
    at::autocast::clear_cache();
  }
  BF16Autocast(const BF16Autocast&) = delete;
  BF16Autocast& operator=(const BF16Autocast&) = delete;

 private:
  bool on_, was_ = false, cache_was_ = true;
};

// Autocast on device type `type` set as a forward left it, for a scope: a custom autograd function's backward
// recomputes its forward's matmuls and must do so at the forward's precision, whatever the caller's state when
// backward runs (its saved logsumexps came from those matmuls).
class AutocastAs {
 public:
  AutocastAs(c10::DeviceType type, bool on, at::ScalarType dtype)
      : type_(type), was_(at::autocast::is_autocast_enabled(type)), dtype_was_(at::autocast::get_autocast_dtype(type)) {
    at::autocast::set_autocast_dtype(type, dtype);
    at::autocast::set_autocast_enabled(type, on);
  }
  ~AutocastAs() {
    at::autocast::set_autocast_enabled(type_, was_);
    at::autocast::set_autocast_dtype(type_, dtype_was_);
  }
  AutocastAs(const AutocastAs&) = delete;
  AutocastAs& operator=(const AutocastAs&) = delete;

 private:
  c10::DeviceType type_;
  bool was_;
  at::ScalarType dtype_was_;
};

}  // namespace distill::model
