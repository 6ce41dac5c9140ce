"use strict";
// The page of stages/serve.py: sends the chosen photos to POST /predict (field "files", at most
// --max-files per request) and shows, for each, the part of the photo the model looks at, its
// top 3 classes and the low-confidence warning. Everything it needs comes from this server.

let model = null; // GET /model: kind, title, classes, preprocessing, threshold, limits

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // never innerHTML: file names come from the user
  return node;
}

const percent = (p) => `${(100 * p).toFixed(1)} %`;

async function loadModel() {
  const response = await fetch("/model");
  model = await response.json();
  $("model").textContent = `Model: ${model.title} (${model.kind}); classes: ${model.classes.join(", ")}`;
  $("limits").textContent = `Up to ${model.limits.max_files} photos at a time, ${model.limits.max_upload_mb} MB each.`;
}

// The part of a width x height photo the model sees, in % of the photo: `region` (the recipe's region,
// or the box the server located under the wearer's face), and with resize "crop" only the centred
// square of it.
function lookedAt(width, height, region) {
  let top = region.top * height, bottom = region.bottom * height;
  let left = region.left * width, right = region.right * width;
  if (model.preprocessing.resize === "crop") {
    const side = Math.min(bottom - top, right - left);
    const middleY = (top + bottom) / 2, middleX = (left + right) / 2;
    [top, bottom, left, right] = [middleY - side / 2, middleY + side / 2, middleX - side / 2, middleX + side / 2];
  }
  return { top: 100 * top / height, left: 100 * left / width,
           width: 100 * (right - left) / width, height: 100 * (bottom - top) / height };
}

// How the server's locator placed the box (result.locator), for the caption.
const LOCATED_BY = { face: "under the face", pose: "between the shoulders", closeup: "at the top of the close-up" };

function addCard(file) {
  const card = element("article", "card");
  const frame = element("div", "frame");
  const image = element("img");
  image.alt = file.name;
  const outline = element("div", "outline");
  outline.hidden = true;
  // Until the server answers, the recipe's region; a model that locates the neckline answers with its box.
  let region = model.preprocessing.region;
  const draw = () => {
    if (!image.naturalWidth) return;
    const box = lookedAt(image.naturalWidth, image.naturalHeight, region);
    Object.assign(outline.style, { top: `${box.top}%`, left: `${box.left}%`, width: `${box.width}%`,
                                   height: `${box.height}%` });
    outline.hidden = false;
  };
  image.addEventListener("load", () => { draw(); URL.revokeObjectURL(image.src); });
  const caption = element("p", "caption", "outlined: the part of the photo the model looks at");
  image.addEventListener("error", () => { frame.hidden = true; caption.hidden = true; }); // not an image
  image.src = URL.createObjectURL(file);
  frame.append(image, outline);
  const body = element("div", "body");
  body.append(element("p", "name", file.name), element("p", "pending", "classifying…"));
  card.append(frame, caption, body);
  $("results").append(card);
  body.outlineBox = (box, located, locator) => {
    region = box;
    outline.classList.toggle("not-located", located === false);
    caption.textContent = located === true ? `outlined: the neckline located ${LOCATED_BY[locator] || ""}, ` +
      "what the model looks at" : "outlined: the part of the photo the model looks at";
    draw();
  };
  return body;
}

function showResult(body, result, kind) {
  body.replaceChildren(element("p", "name", result.path));
  if (result.error) {
    body.append(element("p", "error", `Could not classify this file: ${result.error}`));
    return;
  }
  if (result.box) body.outlineBox(result.box, result.located, result.locator);
  body.append(element("h2", "label", result.label));
  const list = element("ul", "top3");
  for (const [label, probability] of result.top3) {
    const row = element("li");
    const bar = element("span", "bar");
    const fill = element("span");
    fill.style.width = `${100 * probability}%`;
    bar.append(fill);
    row.append(element("span", "top-label", label), bar, element("span", "percent", percent(probability)));
    list.append(row);
  }
  body.append(list);
  if (result.decision) {
    // auto | review | unfamiliar: the model's decision rule (models/decisions/, chosen by the decide stage)
    const words = {auto: "Tagged automatically", review: "To review", unfamiliar: "Unfamiliar photo"};
    body.append(element("p", `decision decision-${result.decision}`,
                        `${words[result.decision]}: ${model.decisions[result.decision]}.`));
  }
  if (result.low_confidence && result.decision !== "unfamiliar") {
    const warning = model.low_confidence_warning;
    const below = model.confidence_threshold === null ? "no threshold reaches the target accuracy"
                                                      : `below ${percent(model.confidence_threshold)}`;
    body.append(element("p", "warning", `${warning[0].toUpperCase()}${warning.slice(1)} (top probability ` +
                        `${percent(result.probability)}, ${below}).`));
  }
  if (result.located === false) {
    body.append(element("p", "warning not-located",
                        "No neckline located: neither a face nor a person was found, so the model saw the " +
                        "fixed region instead. Treat this answer with care."));
  }
  if (result.view === "back") {
    body.append(element("p", "warning back-view",
                        "Back view: the photo shows the wearer's back, where no neckline can be seen. " +
                        "Treat this answer with care; a front view answers better."));
  }
  const title = kind === model.kind ? model.title : kind;
  body.append(element("p", "answered", `Answered by the ${title} (${kind}).`));
  if (kind === model.kind && model.trained_on) body.append(element("p", "trained-on", `The model was ${model.trained_on}.`));
}

function showError(body, message) {
  body.querySelector(".pending")?.remove();
  body.append(element("p", "error", message));
}

async function send(batch) {
  const form = new FormData();
  for (const { file } of batch) form.append("files", file, file.name);
  let response, answer;
  try {
    response = await fetch("/predict", { method: "POST", body: form });
    answer = await response.json();
  } catch (err) {
    batch.forEach(({ body }) => showError(body, `The server did not answer (${err.message}); try again.`));
    return;
  }
  const results = response.ok ? answer : answer.results;
  if (!results) {
    batch.forEach(({ body }) => showError(body, answer.detail || `error ${response.status}`));
    return;
  }
  const kind = response.headers.get("X-Model") || model.kind;
  batch.forEach(({ body }, i) => showResult(body, results[i], kind));
}

async function classifyFiles(files) {
  if (!files.length) return;
  if (!model) await loadModel();
  const tooLarge = model.limits.max_upload_mb * 1024 * 1024;
  const queue = [];
  for (const file of files) {
    const body = addCard(file);
    if (file.size > tooLarge) {
      showError(body, `This photo is ${(file.size / 1048576).toFixed(1)} MB, over the limit of ` +
                      `${model.limits.max_upload_mb} MB: choose a smaller copy.`);
    } else {
      queue.push({ file, body });
    }
  }
  $("status").textContent = `Classifying ${queue.length} photo(s)…`;
  for (let start = 0; start < queue.length; start += model.limits.max_files) {
    await send(queue.slice(start, start + model.limits.max_files));
  }
  $("status").textContent = `Classified ${queue.length} photo(s).`;
}

function setUp() {
  const input = $("files"), drop = $("drop");
  input.addEventListener("change", () => {
    classifyFiles([...input.files]);
    input.value = ""; // choosing the same photo again classifies it again
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    classifyFiles([...event.dataTransfer.files]);
  });
  loadModel().catch((err) => { $("model").textContent = `Could not reach the server: ${err.message}`; });
}

setUp();
