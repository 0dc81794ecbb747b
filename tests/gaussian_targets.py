"""Exact Gaussian targets shared by the kernel tests (closed-form gradient, exact draws)."""

import torch
from scipy import stats

from snfseq.energy import Energy


class CorrelatedGaussian(Energy):
    """``0.5 (x - mean)^T P (x - mean)`` with a closed-form gradient."""

    def __init__(self, mean: torch.Tensor, covariance: torch.Tensor) -> None:
        self.mean = mean
        self.covariance = covariance
        self.precision = torch.linalg.inv(covariance)
        self.cholesky = torch.linalg.cholesky(covariance)

    def __call__(self, x):
        diff = x - self.mean
        return 0.5 * ((diff @ self.precision) * diff).sum(-1)

    def _value_and_grad(self, x):
        diff = x - self.mean
        grad = diff @ self.precision
        return 0.5 * (grad * diff).sum(-1), grad

    def sample(self, n: int) -> torch.Tensor:
        return self.mean + torch.randn(n, self.mean.shape[0]) @ self.cholesky.T

    def marginal_cdf(self, dim: int):
        scale = self.covariance[dim, dim].sqrt().item()
        return stats.norm(self.mean[dim].item(), scale).cdf


def correlated_gaussian(scales=(0.5, 1.0, 2.0, 1.0, 3.0), correlation=0.8):
    """Equicorrelated 5-D Gaussian with different scales."""
    scales_t = torch.tensor(scales)
    dim = len(scales)
    corr = (1 - correlation) * torch.eye(dim) + correlation * torch.ones(dim, dim)
    mean = torch.linspace(-1.0, 1.0, dim)
    return CorrelatedGaussian(mean, scales_t[:, None] * corr * scales_t[None, :])
