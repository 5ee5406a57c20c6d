"""Per-image appearance: the colour-corrected PSNR's affine fit, and appearance vectors that change
the NeRF field's colour but never its density."""

import numpy as np

from mipnerf import metrics


def test_color_fit_recovers_an_affine_transform_exactly():
    rng = np.random.default_rng(0)
    render = rng.uniform(0.2, 0.8, size=(16, 12, 3))
    matrix = np.array([[0.9, 0.05, 0.0], [0.1, 0.8, 0.05], [-0.05, 0.1, 0.7]])
    bias = np.array([0.05, -0.02, 0.1])
    gt = render @ matrix + bias
    assert 0 <= gt.min() and gt.max() <= 1
    fit = metrics.color_fit(render, gt)
    np.testing.assert_allclose(fit[:3], matrix, atol=1e-10)
    np.testing.assert_allclose(fit[3], bias, atol=1e-10)
    assert metrics.color_corrected_psnr(render, gt) > 150
    assert metrics.psnr(render, gt) < 40
    # With a mask, the masked-out pixels (here spoilt) do not count.
    mask = np.ones(render.shape[:2], bool)
    mask[:4] = False
    spoilt = gt.copy()
    spoilt[:4] = rng.uniform(size=spoilt[:4].shape)
    assert metrics.color_corrected_psnr(render, spoilt, mask) > 150
    assert metrics.color_corrected_psnr(render, spoilt) < 40


def test_color_corrected_psnr_is_at_least_the_plain_one_and_keeps_its_order():
    rng = np.random.default_rng(1)
    gt = rng.uniform(size=(20, 20, 3))
    near = np.clip(gt + rng.normal(scale=0.02, size=gt.shape), 0, 1)
    far = np.clip(gt + rng.normal(scale=0.1, size=gt.shape), 0, 1)
    for render in (near, far):
        assert metrics.color_corrected_psnr(render, gt) >= metrics.psnr(render, gt) - 1e-6
    assert metrics.color_corrected_psnr(near, gt) > metrics.color_corrected_psnr(far, gt)
