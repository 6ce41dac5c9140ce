"""The generator of the embedded default data set: photo-like garment images (stage `synthesize`).

Each image is a front view of a top (T-shirt, sweater, blouse), either worn (neck, chest and
arms showing through the openings) or shot "ghost mannequin" style (the inside of the back
showing through the neckline). Only the neckline's shape depends on the class; colours,
patterns, background, framing, lighting, folds, blur, noise and JPEG artefacts are nuisance
variation drawn independently of it, so a classifier has to look at the neckline.

Geometry lives in *garment units*: origin at the centre of the neck line (the line through
the two points where the neckline meets the shoulder seams), x towards the image's right,
y downwards, 1 unit = shoulder width. A per-image frame (scale, position, rotation, slight
aspect change) maps garment units to pixels, so one geometry serves every framing, and
fabric patterns are evaluated in garment units so they scale and rotate with the garment.

One image is drawn in three steps, one module each, and the writer runs them for every image:

- `scenes.py`: the classes' neckline shapes, and everything else drawn at random for one image
  (framing, garment, wearer, colours);
- `masks.py`: the garment's and the wearer's outlines in garment units, filled into anti-aliased masks;
- `painting.py`: `render_garment`, one image: background, fabric, light, the masks painted back to front,
  then the camera (blur, noise, exposure, JPEG);
- `writer.py`: `generate_dataset` and the stage `synthesize`: every image seeded on its own, rendered in
  worker processes and written as <out>/<class>/<class>_0000.jpg, ...
"""
