import numpy as np
import pytest

from isr_lightning.data.mot import (
    FrameBoxes,
    MalformedDetectionsError,
    detection_rows,
    filter_boxes,
    format_mot_rows,
    ground_truth_rows,
    parse_mot_rows,
    parse_mot_text,
    read_mot_file,
    read_mot_rows,
    read_seqinfo,
    write_mot_file,
)


def test_parse_detections_xywh_to_xyxy_and_threshold():
    text = "2,-1,10,20,30,40,0.9\n1,-1,0,0,5,6,0.2\n2,-1,1.5,2.5,3,4,0.5\n"
    out = parse_mot_text(text)
    assert sorted(out) == [1, 2]
    np.testing.assert_allclose(out[2].boxes, [[10, 20, 40, 60], [1.5, 2.5, 4.5, 6.5]])
    np.testing.assert_array_equal(out[2].ids, [-1, -1])
    np.testing.assert_allclose(out[2].scores, [0.9, 0.5])
    out = parse_mot_text(text, score_threshold=0.6)
    assert sorted(out) == [2] and len(out[2]) == 1


def test_parse_gt_filters_flag_class_visibility():
    text = "\n".join(
        [
            "1,1,0,0,10,10,1,1,1.0",  # kept
            "1,2,0,0,10,10,0,1,1.0",  # flag 0: ignored
            "1,3,0,0,10,10,1,3,1.0",  # class 3 (car)
            "1,4,0,0,10,10,1,1,0.1",  # low visibility
            "1,5,0,0,10,10,1,7,0.9",  # static person
        ]
    )
    out = parse_mot_text(text, is_gt=True, gt_classes=(1, 7), min_visibility=0.2)
    np.testing.assert_array_equal(out[1].ids, [1, 5])
    out = parse_mot_text(text, is_gt=True, gt_classes=None, min_visibility=0.0)
    np.testing.assert_array_equal(out[1].ids, [1, 3, 4, 5])


def test_parse_mot15_gt_world_coordinates_are_not_classes():
    # MOT15 (TUD-Stadtmitte): frame,id,x,y,w,h,conf,wx,wy,wz; world coordinates are fractional or -1
    text = (
        "1,1,88,99,61.08,218.56,1,4.4852,5.5016,0\n1,2,181,95,75.8,227,1,4.4091,4.4283,0\n2,1,90,99,61,218,1,-1,-1,-1\n"
    )
    out = parse_mot_text(text, is_gt=True)
    assert sorted(out) == [1, 2] and out[1].ids.tolist() == [1, 2] and out[2].ids.tolist() == [1]


def test_parse_gt_keeps_rows_whose_class_is_not_given():
    # class -1 (not given) is kept; class 3 (a car in MOT17) is dropped; a file of cars gives no frame
    out = parse_mot_text("1,1,0,0,5,5,1,-1,-1\n1,2,0,0,5,5,1,3,1.0\n", is_gt=True)
    assert out[1].ids.tolist() == [1]
    assert parse_mot_text("1,2,0,0,5,5,1,3,1.0\n2,3,0,0,5,5,1,3,1.0\n", is_gt=True) == {}


@pytest.mark.parametrize("text", ["1,-1,2,3\n", "1,-1,a,b,c,d,1\n", "1,-1,0,0,nan,5,1\n"])
def test_malformed_rows_raise(text):
    with pytest.raises(MalformedDetectionsError):
        parse_mot_text(text)


def test_filter_boxes_clips_snaps_and_drops():
    fb = FrameBoxes(
        np.array(
            [[-5, 10.4, 20.2, 30.7], [50, 40, 80, 60], [70, 5, 90, 20], [10, 10, 10.0, 30], [5, 5, 8, 8]],
            dtype=np.float32,
        ),
        np.arange(5),
        np.ones(5, np.float32),
    )
    out = filter_boxes(fb, width=64, height=48, min_size=4)
    # box 0 clipped at x=0 and snapped outwards; box 1 clipped to 64x48; box 2 outside;
    # box 3 zero width; box 4 smaller than min_size
    np.testing.assert_array_equal(out.boxes, [[0, 10, 21, 31], [50, 40, 64, 48]])
    np.testing.assert_array_equal(out.ids, [0, 1])


def test_write_read_roundtrip(tmp_path):
    dets = {3: np.array([[1.0, 2.0, 11.0, 22.0, 0.75]]), 1: np.array([[0, 0, 5, 5, 1.0]])}
    write_mot_file(str(tmp_path / "d.txt"), dets)
    back = read_mot_file(str(tmp_path / "d.txt"))
    np.testing.assert_allclose(back[3].boxes, [[1, 2, 11, 22]], atol=1e-2)
    np.testing.assert_allclose(back[3].scores, [0.75], atol=1e-3)
    assert sorted(back) == [1, 3]


def test_read_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_mot_file(str(tmp_path / "nope.txt"))


def test_seqinfo(tmp_path):
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\nname=S\nframeRate=30\nimExt=.jpg\n")
    info = read_seqinfo(str(tmp_path / "seqinfo.ini"))
    assert info["name"] == "S" and info["framerate"] == "30"


def test_write_mot_file_text(tmp_path):
    dets = {2: np.array([[1.0, 2.5, 11.0, 22.0, 0.75]]), 1: np.array([[0, 0, 5, 5]]), 4: np.zeros((0, 5))}
    write_mot_file(str(tmp_path / "d.txt"), dets)
    assert (tmp_path / "d.txt").read_text() == (
        "1,-1,0.00,0.00,5.00,5.00,1.0000,-1,-1,-1\n2,-1,1.00,2.50,10.00,19.50,0.7500,-1,-1,-1\n"
    )
    write_mot_file(str(tmp_path / "empty.txt"), {})
    assert (tmp_path / "empty.txt").read_text() == ""


def test_rows_and_format_write_what_the_parser_reads():
    det = detection_rows(3, np.array([[1.25, 2.0, 10.0, 20.0], [5.0, 6.0, 7.0, 8.0]]), np.array([0.9, 0.4]))
    gt = ground_truth_rows(3, np.array([7, 8]), np.array([[1.0, 2.0, 10.0, 20.0], [5, 6, 7, 8]]), np.array([1.0, 0.25]))
    assert det.shape == (2, 10) and gt.shape == (2, 9)
    det_text = format_mot_rows(det, (0, 0, 1, 1, 1, 1, 3, 0, 0, 0))
    gt_text = format_mot_rows(gt, (0, 0, 0, 0, 0, 0, 0, 0, 3))
    assert det_text == "3,-1,1.2,2.0,10.0,20.0,0.900,-1,-1,-1\n3,-1,5.0,6.0,7.0,8.0,0.400,-1,-1,-1\n"
    assert gt_text == "3,7,1,2,10,20,1,1,1.000\n3,8,5,6,7,8,1,1,0.250\n"
    back = parse_mot_text(gt_text, is_gt=True, min_visibility=0.5)
    np.testing.assert_array_equal(back[3].ids, [7])
    np.testing.assert_allclose(back[3].boxes, [[1, 2, 11, 22]])
    np.testing.assert_allclose(parse_mot_text(det_text)[3].scores, [0.9, 0.4])
    assert format_mot_rows(np.zeros((0, 10)), (0,) * 10) == ""
    with pytest.raises(ValueError, match="decimals"):
        format_mot_rows(det, (0, 0, 1))
    empty = ground_truth_rows(1, np.zeros(0), np.zeros((0, 4)), np.zeros(0))
    assert empty.shape == (0, 9)


def test_parse_and_read_rows_unfiltered(tmp_path):
    text = "# comment\n2,5,1,2,3,4,0,3,0.1\n\n1 -1 0 0 5 6 0.2 9 9 9\n"
    rows = parse_mot_rows(text)
    # file order, no filtering, cut to the shortest row (9 columns), commas or spaces
    np.testing.assert_array_equal(rows, [[2, 5, 1, 2, 3, 4, 0, 3, 0.1], [1, -1, 0, 0, 5, 6, 0.2, 9, 9]])
    assert parse_mot_rows("\n\n").shape == (0, 6)
    (tmp_path / "gt.txt").write_text(text)
    np.testing.assert_array_equal(read_mot_rows(tmp_path / "gt.txt"), rows)
    with pytest.raises(MalformedDetectionsError, match="line 2"):
        parse_mot_rows("1,2,3,4,5,6\n1,2,3\n")
    with pytest.raises(FileNotFoundError):
        read_mot_rows(tmp_path / "nope.txt")
