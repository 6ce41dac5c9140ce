"""The neckline locator: where in a photo the neckline is, before any model sees it, which locator
placed the box, and whether the photo is a back view.

Most neckline photos are full-body or three-quarter shots, where the collar is a few percent of the
picture. The box the models see is anchored under the wearer's face, in face units (`data.locate_box`):

    top    = face top + locate_box.top    x face height
    bottom = face top + locate_box.bottom x face height
    left   = face centre - locate_box.half_width x face width     (right: + the same)

`data.locate` says how the face, or what stands for it, is found:

- `face`: a face detector (FACE_DETECTOR, fashion/data/faces.py). No face: the photo keeps
  `data.region`, with locator `none` and `located: false`.
- `auto`: every photo gets a box, or a reason why not, in this order:
  1. `face`: the face detector's face;
  2. `pose`: BlazePose's shoulders (fashion/data/pose.py), which stand in for the face (a face box placed
     from the shoulders by FROM_SHOULDERS, measured on the photos where both are found): with or without
     a face in the photo;
  3. `closeup`: neither a face nor shoulders that place a box: the garment fills the frame and the head is
     cut off (every such neckline photo is one, looked at), and its neckline is in the top band
     CLOSEUP_REGION, not in the upper 60 % (the same band holds a flat-lay's collar);
  4. `none`: a photo with nothing in it (nearly one colour): it keeps `data.region` (`located: false`).
  BlazePose also says which way the wearer faces: `view` is `back` when the person's left shoulder is on
  the photo's left (the wearer's back to the camera: no neckline to see), `front` when it is on the right,
  and None when no person was found or the photo is a close-up (a face alone does not tell: BlazeFace
  finds the cheek and ear of a wearer seen from behind). A back view keeps its box (the back of the collar) and is
  said, in the manifest and every prediction.

The box is clipped to the photo. Several faces in one photo: the largest one is taken (product photos
show one wearer in front; a smaller face is a print, a mirror or a person in the background).
`fashion.data.images.preprocess` calls `locate` for prepare, predict and serve alike, so a photo gets
exactly the same crop in all three.
"""

from dataclasses import dataclass

MIN_BOX_PIXELS = 8     # a clipped box thinner than this (a face at the bottom edge) is no neckline box
# The face detector of data.locate face and auto: MediaPipe's full-range BlazeFace finds a few more faces
# than MTCNN on the neckline photos (515 against 505 of 654), 23 times as many per CPU second
# (benchmarks/locate_detectors.py, docs/locate.md#the-detectors-cost).
FACE_DETECTOR = "blazeface_full"
# Where the face box lies relative to the shoulders, in shoulder widths (the distance between BlazePose's
# two shoulder points): its width and height, and how far its top is above the shoulders' midpoint.
# Medians over the neckline photos where both MTCNN (whose box units data.locate_box has) and BlazePose found
# the wearer, front views (benchmarks/locate_report.py prints them).
FROM_SHOULDERS = {"width": 0.41, "height": 0.56, "top_above": 0.92}
# Shoulders closer together than this share of the photo's longer side are a side view or a close-up's
# misplaced points (none of the neckline photos lies between 0.07 and 0.12): no box, no view from them.
MIN_SHOULDER_SPAN = 0.1
# A close-up with the head cut off: the neckline is in the top band of the photo.
CLOSEUP_REGION = {"top": 0.0, "bottom": 0.45, "left": 0.0, "right": 1.0}
BLANK_SD = 3.0         # a photo whose pixels vary less than this (0..255) shows nothing to locate
# Bump when a rule or constant above (or fashion.data.faces.AS_MTCNN) changes: the decode cache then decodes again.
RULES_VERSION = 2
PHOTO_LOCATORS = ("face", "pose", "closeup", "none")
VIEWS = ("front", "back")


@dataclass(frozen=True)
class Location:
    """The part of a photo a model sees, as fractions of its height and width; whether a locator placed it
    (False: the photo's data.region, because nothing was found; None: data.locate is none, nothing was looked
    for); which locator placed it (one of PHOTO_LOCATORS; None with data.locate none); and the view (front, back, or None
    when unknown)."""
    top: float
    bottom: float
    left: float
    right: float
    located: bool | None
    locator: str | None = None
    view: str | None = None

    @property
    def region(self):
        return {"top": self.top, "bottom": self.bottom, "left": self.left, "right": self.right}

    def to_record(self):
        """The box as the manifest and the prediction records write it (4 decimals: 0.1 px at 1000 px)."""
        return {"located": self.located, "locator": self.locator, "view": self.view,
                "box": {k: round(v, 4) for k, v in self.region.items()}}


def choose_face(faces, min_confidence):
    """The face to anchor on: the largest confident one (product photos show one wearer, in front), or None."""
    confident = [face for face in faces if face[4] >= min_confidence and face[2] > 0 and face[3] > 0]
    return max(confident, key=lambda face: (face[2] * face[3], -face[1]), default=None)


def box_under_face(face, box, height, width):
    """The neckline box (face units in `box`) under a face (x, y, w, h), clipped to a height x width photo,
    as (top, bottom, left, right) pixels; None when too little of it is left inside the photo."""
    x, y, w, h = face[:4]
    centre = x + w / 2
    top, bottom = y + box["top"] * h, y + box["bottom"] * h
    left, right = centre - box["half_width"] * w, centre + box["half_width"] * w
    top, bottom = max(0.0, top), min(float(height), bottom)
    left, right = max(0.0, left), min(float(width), right)
    if bottom - top < MIN_BOX_PIXELS or right - left < MIN_BOX_PIXELS:
        return None
    return top, bottom, left, right


def face_from_shoulders(pose):
    """The face box (x, y, w, h) the shoulders of a fashion.data.pose.Pose stand for (FROM_SHOULDERS)."""
    (lx, ly), (rx, ry) = pose.shoulders
    span = pose.shoulder_width
    width, height = FROM_SHOULDERS["width"] * span, FROM_SHOULDERS["height"] * span
    top = (ly + ry) / 2 - FROM_SHOULDERS["top_above"] * span
    return ((lx + rx) / 2 - width / 2, top, width, height)


def view_of(pose):
    """back when the person's left shoulder is on the photo's left, else front."""
    return "back" if pose.shoulders_mirrored else "front"


def is_blank(rgb):
    """True for a photo of nearly one colour: nothing in it to locate."""
    return float(rgb.std()) < BLANK_SD


def locate(rgb, preprocessing):
    """The Location of the neckline in a decoded photo (a recipes.Preprocessing says how to find it)."""
    if preprocessing.locate == "none":
        return Location(**preprocessing.region, located=None)
    from fashion.data import faces

    height, width = rgb.shape[:2]

    def placed(face, locator, view):
        pixels = box_under_face(face, preprocessing.locate_box, height, width)
        if pixels is None:
            return None
        top, bottom, left, right = pixels
        return Location(float(top / height), float(bottom / height), float(left / width), float(right / width),
                        True, locator, view)

    face = choose_face(faces.detect_faces(rgb, FACE_DETECTOR), faces.MIN_CONFIDENCE[FACE_DETECTOR])
    if preprocessing.locate == "face":
        return (face and placed(face, "face", None)) or Location(**preprocessing.region, located=False,
                                                                  locator="none")
    from fashion.data.pose import find_pose

    pose = find_pose(rgb)
    if pose is not None and pose.shoulder_width < MIN_SHOULDER_SPAN * max(height, width):
        pose = None
    view = view_of(pose) if pose is not None else None
    found = (face and placed(face, "face", view)) or (pose and placed(face_from_shoulders(pose), "pose", view))
    if found:
        return found
    # Shoulders that place no box lie at or above the top edge: a close-up too, and their view is doubtful.
    if not is_blank(rgb):
        return Location(**CLOSEUP_REGION, located=True, locator="closeup", view=None)
    return Location(**preprocessing.region, located=False, locator="none", view=None)


def version(locate_with):
    """What identifies the locator's results beyond the recipe (the decode cache's fingerprint holds it): the
    face detector's version, and with auto the pose models' sha256 and the rules' version."""
    if locate_with == "none":
        return None
    from fashion.data import faces, pose, tflite

    parts = [faces.detector_version(FACE_DETECTOR), f"rules {RULES_VERSION}"]
    if locate_with == "auto":
        parts += [tflite.POSE_DETECTOR.digest(), tflite.digest(pose.LANDMARK_MODEL)]
    return " ".join(parts)
