"""Demo 6 - the seed's YOLO progression: from one box to YOLOv1's 7x7x30 grid.

  1. One object per image, 25 outputs: 1 confidence + 4 box numbers (x, y, sqrt w, sqrt h)
     + 20 class scores.
  2. Two box predictors sharing the class scores, 30 outputs (2 x 5 + 20): during training
     the predictor whose box overlaps the object more (while neither overlaps it, the one
     nearer to it: darknet's rule) is "responsible" for it, so the two can specialise.
  3. The same 30 numbers for every cell of a 7x7 grid, 7 x 7 x 30 = 1470 outputs: each cell
     answers for the object whose centre falls in it, so an image can hold many objects.

All three use the YOLOv1 loss (tinygrad_yolo.detection.YOLOv1Loss with S, B = 1, 1; 1, 2;
7, 2 and C = 20) and a small network built from nn layers (demo_common.TinyDetector: three
conv-BN-LeakyReLU-maxpool stages, 56 px in, 7x7x64 features out). 1 and 2 put fully
connected layers on top, as YOLOv1 does. For 3 the 1470 outputs come from a 3x3 and a 1x1
convolution on the 7x7 feature map, so each cell's 30 numbers are computed from the features
at that cell (as in later YOLOs): YOLOv1's fully connected head has to learn every cell
separately and, in a run this short, hardly gets past predicting "nothing" (held-out mAP
about 0.03 in our trials). Each is trained briefly with Adam on synthetic shape images
(20 classes: 5 shapes x 4 colours): one object per image for 1 and 2, one to four for 3
(which gets half of the steps). Each is then run on held-out images and its detections
(decode + per-class NMS) are drawn over the truth (thin white boxes). Brief training:
expect rough boxes and many wrong classes, not a finished detector.

A second figure puts one image with several objects through all three: the grid of each
(1x1, 1x1, 7x7), and both predictors of every cell that holds an object centre, the
responsible one (the higher IoU with the cell's object, or the nearer box while neither
overlaps it) solid. A 1x1 grid answers for one
object however many there are: its target keeps the largest and drops the others.
"""
import demo_common  # noqa: F401  (first: it imports tinygrad_yolo before NumPy, see there)

import numpy as np

from demo_common import (CLASS_NAMES, PREDICTOR_COLORS, TinyDetector, crowded_image, draw_grid,
                         finish, in_target, object_cells, parse_args, pyplot, shape_images, tg,
                         to_uint8_image)
from tinygrad_yolo import optim
from tinygrad_yolo.detection import (YOLOv1Loss, box_iou, encode_batch, mean_average_precision,
                                     postprocess)
from tinygrad_yolo.viz import draw_detections

C = 20
# (title, S, B, objects per image at most, head, share of the training steps)
STAGES = (("one box, 25 outputs", 1, 1, 1, "fc", 0.25),
          ("two boxes, 30 outputs", 1, 2, 1, "fc", 0.25),
          ("7x7 grid, 1470 outputs", 7, 2, 4, "conv", 0.5))


def truth_rows(boxes, labels):
    return [np.concatenate([b, l[:, None]], axis=1) for b, l in zip(boxes, labels)]


def train_stage(S, B, max_objects, head, sizes, steps, rng, seed):
    n_train, n_test, img, _, batch = sizes
    images, boxes, labels = shape_images(n_train + n_test, img, rng, max_objects=max_objects,
                                         min_size=0.25 if max_objects == 1 else 0.15, max_size=0.7)
    target, _ = encode_batch(boxes[:n_train], labels[:n_train], S=S, C=C)
    tg.seed(seed)
    model = TinyDetector(S, B, C, img_size=img, head=head)
    loss_fn = YOLOv1Loss(S=S, B=B, C=C)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    batches = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        idx = batches.integers(0, n_train, batch)
        loss, _ = loss_fn(model(tg.Tensor(images[idx])), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with tg.no_grad():
        out = model(tg.Tensor(images[n_train:]))
    test = (images[n_train:], boxes[n_train:], labels[n_train:])
    return model, out, np.array(losses), test


def evaluate(out, S, B, test):
    images, boxes, labels = test
    dets = postprocess(out, S=S, B=B, C=C, conf_threshold=0.005)
    mAP = mean_average_precision(dets, truth_rows(boxes, labels), C)["map"]
    # the best detection of each image against its first object (images 1 and 2 hold one)
    ious, correct = [], []
    for d, b, l in zip(dets, boxes, labels):
        if len(d):
            ious.append(float(box_iou(d[:1, :4], b[:1])[0, 0]))
            correct.append(int(d[0, 5]) == int(l[0]))
        else:
            ious.append(0.0)
            correct.append(False)
    return dets, {"map50": float(mAP), "top_iou": float(np.mean(ious)),
                  "top_class_accuracy": float(np.mean(correct))}


def one_image_figure(models, image, boxes, labels, path):
    """The same image through every stage: its grid and both predictors of each object cell."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 5.6))
    shown = to_uint8_image(image[0]).repeat(4, 0).repeat(4, 1)
    summary = []
    for ax, (title, S, B, model) in zip(axes, models):
        with tg.no_grad():
            out = model(tg.Tensor(image)).numpy()
        target, dropped = encode_batch([boxes], [labels], S=S, C=C)
        responsible, iou = YOLOv1Loss(S=S, B=B, C=C).assign(out.astype(np.float64),
                                                            target.astype(np.float64))
        cells = object_cells(target[0])
        draw_grid(ax, shown, S, boxes, out[0], B, cells, responsible[0],
                  kept=in_target(boxes, target[0]))
        kept = f"the target keeps {len(cells)} of {len(boxes)} objects"
        kept += " (one per cell)" if dropped else ""
        ax.set_title(f"{title}\n{S}x{S} grid, {B} predictor{'s' if B > 1 else ''} per cell\n{kept}",
                     fontsize=9)
        summary.append({"S": S, "B": B, "objects_in_target": len(cells), "dropped": int(dropped),
                        "responsible_iou": [float(iou[0, i, j][responsible[0, i, j]].max())
                                            for i, j in cells]})
    line = plt.Line2D
    handles = [line([], [], color=PREDICTOR_COLORS[b], lw=2, label=f"predictor {b + 1}")
               for b in range(2)]
    handles += [line([], [], color="0.3", lw=2.2,
                     label="responsible (higher IoU, or nearer): solid"),
                line([], [], color="0.3", lw=1.2, ls="--", label="not responsible: dashed"),
                line([], [], color="white", marker="o", mec="black", lw=1.4,
                     label="true box and centre"),
                line([], [], color="white", lw=1.0, ls=":", label="dropped from the target"),
                line([], [], color="yellow", lw=1.5, label="cell holding the centre")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, facecolor="0.8")
    fig.suptitle("One image, three output layouts (each predictor's box labelled with its "
                 "confidence)", fontsize=11)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return summary


def main(argv=None):
    args = parse_args(__doc__, argv)
    if args.smoke:
        sizes = (32, 4, 56, 16, 8)
    elif args.quick:
        sizes = (192, 8, 56, 120, 16)
    else:
        sizes = (2048, 64, 56, 750, 32)
    n_train, n_test, img, total_steps, batch = sizes
    print(f"each stage: {n_train} training images {img}x{img}, Adam steps of batch {batch} "
          f"({total_steps} in all); {n_test} held-out images")
    rng = np.random.default_rng(args.seed)
    results, drawn, models = {}, [], []
    for title, S, B, max_objects, head, share in STAGES:
        steps = max(1, int(round(share * total_steps)))
        model, out, losses, test = train_stage(S, B, max_objects, head, sizes, steps, rng,
                                               args.seed)
        models.append((title, S, B, model))
        outputs = int(np.prod(out.shape[1:]))
        dets, metrics = evaluate(out, S, B, test)
        k = max(1, steps // 10)
        metrics.update(outputs=outputs, output_shape=list(out.shape[1:]),
                       first_loss=float(losses[0]), final_loss=float(losses[-k:].mean()),
                       parameters=model.num_parameters())
        results[f"S{S}_B{B}"] = metrics
        print(f"{title}: output {tuple(out.shape[1:])} = {outputs} numbers per image, {head} head, "
              f"{metrics['parameters']} parameters")
        print(f"  {steps} steps: training loss {losses[0]:.3f} -> {metrics['final_loss']:.3f} "
              f"(mean of the last {k}); held-out: mAP@0.5 {metrics['map50']:.3f}, best "
              f"detection: IoU with the (first) object {metrics['top_iou']:.2f}, class right "
              f"{metrics['top_class_accuracy']:.0%}")
        drawn.append((title, detection_pictures(test, dets, max_objects)))

    path = draw_progression(args.out / "06_yolo_progression.png", drawn)
    image, boxes, labels = crowded_image(args.seed, sizes[2], S=7, C=C)
    one_path = args.out / "06_yolo_one_image.png"
    results["one_image"] = one_image_figure(models, image, boxes, labels, one_path)
    return finish(args, results, [path, one_path], "06_yolo_progression")


def detection_pictures(test, dets, max_objects):
    """The first held-out images (up to 4), 3x enlarged, with their detections drawn over the
    truth."""
    images, boxes, labels = test
    row = []
    for i in range(min(4, len(images))):
        # one object: the best box; the grid: every box scoring >= 0.1 (at least the best one)
        if max_objects > 1:
            shown = dets[i][:max(1, int((dets[i][:, 4] >= 0.1).sum()))]
        else:
            shown = dets[i][:1]
        row.append(draw_detections(to_uint8_image(images[i]).repeat(3, 0).repeat(3, 1), shown,
                                   class_names=CLASS_NAMES, truth=truth_rows(boxes, labels)[i]))
    return row


def draw_progression(path, drawn):
    """One row of pictures per stage: [(title, [picture])]."""
    plt = pyplot()
    cols = len(drawn[0][1])
    fig, axes = plt.subplots(len(drawn), cols, figsize=(2.6 * cols, 2.8 * len(drawn)),
                             squeeze=False)
    for r, (title, row) in enumerate(drawn):
        for c, im in enumerate(row):
            axes[r, c].imshow(im)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize=9)
    fig.suptitle("YOLO progression on held-out images (white: truth)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
