// tests/test_torch_smoke.cpp: LibTorch links, runs and differentiates in this build (CPU; CUDA if present).
#include <catch2/catch.hpp>
#include <torch/torch.h>

TEST_CASE("libtorch: matmul matches a hand-computed product") {
  auto a = torch::tensor({{1.0f, 2.0f}, {3.0f, 4.0f}});
  auto b = torch::tensor({{5.0f, 6.0f}, {7.0f, 8.0f}});
  auto c = a.matmul(b);
  CHECK(c[0][0].item<float>() == 19.0f);
  CHECK(c[0][1].item<float>() == 22.0f);
  CHECK(c[1][0].item<float>() == 43.0f);
  CHECK(c[1][1].item<float>() == 50.0f);
}

TEST_CASE("libtorch: autograd gives d/dx sum(x^3) = 3x^2") {
  auto x = torch::tensor({0.5, -1.0, 2.0}, torch::dtype(torch::kFloat64).requires_grad(true));
  x.pow(3).sum().backward();
  auto expect = 3 * x.detach().pow(2);
  CHECK(torch::allclose(x.grad(), expect));
}

TEST_CASE("libtorch: a linear layer trains a step on the selected device") {
  torch::Device dev = torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
  torch::manual_seed(0);
  torch::nn::Linear lin(4, 1);
  lin->to(dev);
  torch::optim::SGD opt(lin->parameters(), 0.1);
  auto x = torch::randn({16, 4}, dev), y = x.sum(1, true);
  float first = 0, last = 0;
  for (int i = 0; i < 50; ++i) {
    opt.zero_grad();
    auto loss = torch::mse_loss(lin(x), y);
    loss.backward();
    opt.step();
    if (i == 0) first = loss.item<float>();
    last = loss.item<float>();
  }
  CHECK(last < first * 0.1f);
}
