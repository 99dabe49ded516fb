"""Reading detector images, darks, flats and masks (xrdpdf.io.images).

Truth: the arrays written by tifffile, fabio, h5py and numpy themselves.
"""

from __future__ import annotations

import fabio.cbfimage
import fabio.edfimage
import h5py
import numpy as np
import pytest
import tifffile

from xrdpdf._core.errors import InputError
from xrdpdf.io import images

SHAPE = (24, 30)


@pytest.fixture
def frames():
    rng = np.random.default_rng(1)
    return rng.integers(0, 5000, size=(3, *SHAPE)).astype(np.int32)


def test_tiff_single_and_stack(tmp_path, frames):
    single = tmp_path / "a.tif"
    tifffile.imwrite(single, frames[0])
    out = images.read_image(single)
    assert out.dtype == np.float64 and out.shape == SHAPE
    np.testing.assert_array_equal(out, frames[0])  # exact: integers survive float64
    stack = tmp_path / "s.tiff"
    tifffile.imwrite(stack, frames, photometric="minisblack")
    assert images.frame_count(stack) == 3
    got = list(images.iter_frames(stack))
    assert [f.index for f in got] == [0, 1, 2] and all(f.nframes == 3 for f in got)
    for f, ref in zip(got, frames, strict=True):
        np.testing.assert_array_equal(f.data, ref)
    summed = list(images.iter_frames(stack, sum_frames=True))
    assert len(summed) == 1 and summed[0].index is None and summed[0].summed == 3
    np.testing.assert_array_equal(summed[0].data, frames.sum(axis=0))


def test_edf_cbf_and_multiframe_edf(tmp_path, frames):
    edf = tmp_path / "a.edf"
    e = fabio.edfimage.EdfImage(data=frames[0])
    e.append_frame(data=frames[1])
    e.write(str(edf))
    assert images.frame_count(edf) == 2
    got = [f.data for f in images.iter_frames(edf)]
    np.testing.assert_array_equal(got[0], frames[0])
    np.testing.assert_array_equal(got[1], frames[1])
    np.testing.assert_array_equal(images.read_image(edf, frame=1), frames[1])
    with pytest.raises(InputError, match="a.edf.*2 frames"):
        images.read_image(edf)  # ambiguous without frame= or sum
    cbf = tmp_path / "a.cbf"
    fabio.cbfimage.CbfImage(data=frames[2]).write(str(cbf))
    np.testing.assert_array_equal(images.read_image(cbf), frames[2])


@pytest.mark.parametrize("cut", ["header", "marker", "binary"])
def test_truncated_cbf_is_refused_before_fabio(tmp_path, frames, cut):
    # fabio 2026.6 does not return on a CBF cut inside its MIME header (a 303-byte file
    # from a fuzz run); each cut is refused by name instead
    whole = tmp_path / "whole.cbf"
    fabio.cbfimage.CbfImage(data=frames[2]).write(str(whole))
    raw = whole.read_bytes()
    mark = raw.index(b"\x0c\x1a\x04\xd5")
    end = {
        "header": raw.index(b"X-Binary-Size:") + 3,
        "marker": mark,
        "binary": mark + 4 + (len(raw) - mark - 4) // 2,
    }[cut]
    bad = tmp_path / "cut.cbf"
    bad.write_bytes(raw[:end])
    with pytest.raises(InputError, match="cut.cbf.*truncated"):
        images.read_image(bad)


def test_hdf5_stack_nexus_default_and_explicit(tmp_path, frames):
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry"
        entry = f.create_group("entry")
        entry.attrs["default"] = "data"
        data = entry.create_group("data")
        data.attrs["signal"] = "images"
        data.create_dataset("images", data=frames)
        # a larger decoy: the NeXus default must win over "largest dataset"
        f.create_dataset("other/big", data=np.zeros((5, *SHAPE)))
    got = list(images.iter_frames(path))
    assert len(got) == 3
    np.testing.assert_array_equal(got[2].data, frames[2])
    explicit = list(images.iter_frames(f"{path}::/other/big"))
    assert len(explicit) == 5 and not explicit[0].data.any()
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("x/small", data=np.ones(SHAPE))
        f.create_dataset("x/frames", data=frames)
    np.testing.assert_array_equal(images.read_image(plain, frame=1), frames[1])


def test_dark_average_and_flat(tmp_path, frames):
    tifffile.imwrite(tmp_path / "d1.tif", frames[0])
    tifffile.imwrite(tmp_path / "d2.tif", frames[1:3])  # a two-frame dark
    dark = images.read_dark([tmp_path / "d1.tif", tmp_path / "d2.tif"])
    np.testing.assert_allclose(dark, frames.mean(axis=0), rtol=1e-12)  # round-off only
    np.testing.assert_array_equal(images.read_dark(tmp_path / "d1.tif"), frames[0])
    tifffile.imwrite(tmp_path / "bad.tif", np.zeros((5, 5)))
    with pytest.raises(InputError, match="bad.tif.*dark shape"):
        images.read_dark([tmp_path / "d1.tif", tmp_path / "bad.tif"])
    flat = np.full(SHAPE, 1.2)
    tifffile.imwrite(tmp_path / "flat.tif", flat)
    np.testing.assert_array_equal(images.read_flat(tmp_path / "flat.tif"), flat)
    tifffile.imwrite(tmp_path / "zero.tif", np.zeros(SHAPE))
    with pytest.raises(InputError, match="zero.tif.*no positive"):
        images.read_flat(tmp_path / "zero.tif")


def test_masks(tmp_path):
    m = np.zeros(SHAPE, np.uint8)
    m[3, 4] = 1
    m[5, 6] = 255
    tifffile.imwrite(tmp_path / "m.tif", m)
    np.save(tmp_path / "m.npy", m)
    for name in ("m.tif", "m.npy"):
        got = images.read_mask(tmp_path / name)
        assert got.dtype == bool
        np.testing.assert_array_equal(got, m != 0)
    (tmp_path / "empty.msk").write_bytes(b"")
    with pytest.raises(InputError, match="empty.msk.*empty"):
        images.read_mask(tmp_path / "empty.msk")
    frame = np.ones(SHAPE)
    frame[0, 0] = np.nan
    frame[1, 1] = -2
    frame[2, 2] = np.inf
    bad = images.invalid_pixels(frame)
    assert bad.sum() == 3 and bad[0, 0] and bad[1, 1] and bad[2, 2]
    det = np.zeros(SHAPE, bool)
    det[10, :] = True  # a gap row
    flat = np.ones(SHAPE)
    flat[7, 7] = 0.0
    both = images.combine_masks(SHAPE, det, m != 0, None, flat=flat)
    assert both.sum() == SHAPE[1] + 2 + 1
    with pytest.raises(InputError, match="mask shape"):
        images.combine_masks(SHAPE, np.zeros((3, 3)))


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "corrupt", "text"])
def test_bad_files_name_the_file(tmp_path, frames, kind):
    path = tmp_path / f"{kind}.tif"
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, frames[0])
    raw = good.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "corrupt":
        path.write_bytes(b"II*\x00" + b"\xff" * 200)
    elif kind == "text":
        path.write_text("hello, not an image\n")
    with pytest.raises(InputError) as err:
        images.read_image(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)  # one line


def test_truncated_edf(tmp_path, frames):
    edf = tmp_path / "t.edf"
    fabio.edfimage.EdfImage(data=frames[0]).write(str(edf))
    raw = edf.read_bytes()
    edf.write_bytes(raw[: len(raw) - 500])
    with pytest.raises(InputError, match="t.edf.*truncated"):
        images.read_image(edf)


def test_iter_many_reports_and_goes_on(tmp_path, frames):
    tifffile.imwrite(tmp_path / "a.tif", frames[0])
    tifffile.imwrite(tmp_path / "c.tif", frames[1:])
    items = list(images.iter_many([tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "c.tif"]))
    assert [type(i).__name__ for i in items] == ["Frame", "BadInput", "Frame", "Frame"]
    assert "b.tif" in items[1].message
    assert [images.frame_stem(i) for i in items] == ["a", "b", "c_f0000", "c_f0001"]


def test_check_shape():
    images.check_shape(np.zeros(SHAPE), SHAPE, "x.tif")
    with pytest.raises(InputError, match=r"x.tif: image shape \(24, 30\).*\(2048, 2048\)"):
        images.check_shape(np.zeros(SHAPE), (2048, 2048), "x.tif")


@pytest.mark.parametrize("planar", [False, True])
def test_rgb_tiff_refused_by_name(tmp_path, planar):
    import tifffile

    rgb = np.ones((3, 32, 32) if planar else (32, 32, 3), dtype=np.uint8)
    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", planarconfig="separate" if planar else None)
    with pytest.raises(InputError, match="colour \\(RGB\\) TIFF"):
        images.read_image(path)


def test_boolean_image_refused(tmp_path):
    path = tmp_path / "mask_like.npy"
    np.save(path, np.zeros((16, 16), dtype=bool))
    with pytest.raises(InputError, match="boolean image"):
        images.read_image(path)
    assert images.read_mask(path).shape == (16, 16)  # the same file is a valid mask


def test_virtual_dataset_with_missing_source_is_refused(tmp_path):
    frames = np.arange(2 * 8 * 9, dtype=np.float32).reshape(2, 8, 9) + 1.0
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["data"] = frames
    layout = h5py.VirtualLayout(shape=frames.shape, dtype=frames.dtype)
    layout[:] = h5py.VirtualSource("src.h5", "data", shape=frames.shape)
    with h5py.File(tmp_path / "vds.h5", "w") as f:
        f.create_virtual_dataset("images", layout, fillvalue=0)
    # the source present: the frames read through the mapping
    got = images.read_image(f"{tmp_path / 'vds.h5'}::/images", frame=1)
    np.testing.assert_array_equal(got, frames[1])
    src.unlink()  # h5py would now read the fill value (a blank frame) without complaint
    with pytest.raises(InputError, match=r"vds\.h5: virtual dataset /images maps 1 missing"):
        images.read_image(f"{tmp_path / 'vds.h5'}::/images", frame=1)


def _tiff_with_tag_past_the_end(path, frame, tag=270):
    """A little-endian TIFF whose ``tag`` (ImageDescription) points past the end of the file."""
    import struct

    tifffile.imwrite(path, frame, description="d" * 40)
    raw = bytearray(path.read_bytes())
    ifd = struct.unpack_from("<I", raw, 4)[0]
    for i in range(struct.unpack_from("<H", raw, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", raw, entry)[0] == tag:
            struct.pack_into("<I", raw, entry + 8, 0x7FFFFFF0)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("suffix", [".edf", ".mccd"])
def test_tiff_content_under_another_suffix_reads_without_warnings(tmp_path, frames, suffix):
    # TIFF content under a fabio suffix: through fabio, PIL warns about the damaged tag (.edf;
    # pytest's filterwarnings=error makes that a failure) or the MarCCD reader fails on the
    # missing MarCCD header (.mccd); read as a TIFF it gives the frame, and warns of nothing
    path = tmp_path / f"frame{suffix}"
    _tiff_with_tag_past_the_end(path, frames[0].astype(np.uint16))
    out = images.read_image(path)
    np.testing.assert_array_equal(out, frames[0])  # exact: integers read back


def test_jpeg_is_refused_by_name(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.img"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, "JPEG")
    with pytest.raises(InputError, match="photo.img: JPEG"):
        images.read_image(path)
