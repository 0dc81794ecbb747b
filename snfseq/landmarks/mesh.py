"""Index tables of the MediaPipe face mesh: its size and the named groups of compact layouts.

Each table lists, for every landmark of a compact scheme, the mesh indices whose mean it is:
:data:`MESH68_GROUPS` is the iBUG/dlib 68-point scheme, :data:`MESH10_GROUPS` ten points for
head pose and mouth opening (named by :data:`MESH10_NAMES`). The layouts of
:mod:`snfseq.landmarks.layouts` are built from them.

Example:
    >>> len(MESH68_GROUPS), len(MESH10_GROUPS), MESH10_NAMES[4], MESH10_GROUPS[4]
    (68, 10, 'nose_tip', (1,))
    >>> all(0 <= i < FACE_MESH_POINTS for group in MESH68_GROUPS for i in group)
    True
"""

from __future__ import annotations

__all__ = ["FACE_MESH_POINTS", "MESH68_GROUPS", "MESH10_GROUPS", "MESH10_NAMES"]

FACE_MESH_POINTS = 468
"""Points of the MediaPipe face mesh without iris refinement (refinement appends 10 iris points)."""

# The iBUG/dlib 68-point scheme (1-based numbering in the comments) as MediaPipe mesh indices;
# where two indices are given the iBUG point is their mean. Published by Peizhi Yan,
# https://github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks (mediapipe2dlib 1.0, mp2dlib.py,
# Sept. 2024). "Right" is the subject's right, which is the image's left in a frontal view.
MESH68_GROUPS: tuple[tuple[int, ...], ...] = (
    # 1-17: jaw line, from the subject's right ear to the left ear
    (127,),
    (234,),
    (93,),
    (132, 58),
    (58, 172),
    (136,),
    (150,),
    (176,),
    (152,),
    (400,),
    (379,),
    (365,),
    (397, 288),
    (361,),
    (323,),
    (454,),
    (356,),
    # 18-22: right brow, 23-27: left brow
    (70,),
    (63,),
    (105,),
    (66,),
    (107,),
    (336,),
    (296,),
    (334,),
    (293,),
    (300,),
    # 28-31: nose bridge, 32-36: nostrils and base
    (168, 6),
    (197, 195),
    (5,),
    (4,),
    (75,),
    (97,),
    (2,),
    (326,),
    (305,),
    # 37-42: right eye, 43-48: left eye (corner, two upper, corner, two lower)
    (33,),
    (160,),
    (158,),
    (133,),
    (153,),
    (144,),
    (362,),
    (385,),
    (387,),
    (263,),
    (373,),
    (380,),
    # 49-60: outer lip contour, 61-68: inner lip contour
    (61,),
    (39,),
    (37,),
    (0,),
    (267,),
    (269,),
    (291,),
    (321,),
    (314,),
    (17,),
    (84,),
    (91,),
    (78,),
    (82,),
    (13,),
    (312,),
    (308,),
    (317,),
    (14,),
    (87,),
)

# Ten points that carry head pose (eye corners, nose tip, chin) and mouth opening (inner lips);
# the same budget as the ten First Order Motion Model keypoints of the GRU-NF/GRU-SNF papers.
MESH10_NAMES: tuple[str, ...] = (
    "right_eye_outer",
    "right_eye_inner",
    "left_eye_inner",
    "left_eye_outer",
    "nose_tip",
    "mouth_right",
    "mouth_left",
    "upper_lip_inner",
    "lower_lip_inner",
    "chin",
)
MESH10_GROUPS: tuple[tuple[int, ...], ...] = (
    (33,),
    (133,),
    (362,),
    (263,),
    (1,),
    (61,),
    (291,),
    (13,),
    (14,),
    (152,),
)
