"use strict";
// The review queue of stages/serve.py: lists GET /queue/items (a tag run's review and unfamiliar photos, most
// uncertain first) and sends each answer to POST /queue/answer, which rewrites the labels file (data.confirmed).

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // never innerHTML: paths and labels come from files
  return node;
}

let notAClass = {};
let answered = 0;
let total = 0;

function showSummary(listing) {
  $("summary").textContent = `${total} photo(s) to review from ${listing.tags_file}, ${answered} answered; ` +
    `answers go into ${listing.labels_file}.`;
}

function showAnswer(card, answer) {
  card.dataset.answer = answer || "";
  card.querySelector(".answer").textContent = !answer ? "not answered yet" :
    notAClass[answer] ? `answered: ${notAClass[answer]} (not trained on)` :
    `answered: ${answer} (trained on after the next dvc repro)`;
  for (const button of card.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.value === answer));
  }
  const select = card.querySelector("select");
  select.value = answer && !notAClass[answer] ? answer : "";
}

async function send(card, listing, path, label) {
  $("status").textContent = "";
  const response = await fetch("/queue/answer", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path, label }),
  });
  const reply = await response.json();
  if (!response.ok) {
    $("status").textContent = reply.detail;
    return;
  }
  if (!card.dataset.answer) answered += 1;
  showAnswer(card, reply.label);
  showSummary(listing);
}

function frame(item) {
  const box = element("div", "frame");
  const image = element("img");
  image.alt = item.path;
  image.loading = "lazy";
  image.src = `/queue/photo?path=${encodeURIComponent(item.path)}`;
  box.append(image);
  if (item.box) {
    const outline = element("div", "outline");
    outline.classList.toggle("not-located", item.located === "false");
    Object.assign(outline.style, {
      top: `${item.box.top * 100}%`, left: `${item.box.left * 100}%`,
      width: `${(item.box.right - item.box.left) * 100}%`, height: `${(item.box.bottom - item.box.top) * 100}%`,
    });
    box.append(outline);
  }
  return box;
}

function addCard(listing, item, number) {
  const card = element("article", "card queued");
  card.dataset.decision = item.decision;
  card.dataset.path = item.path;
  const body = element("div", "body");
  body.append(element("p", "name", `${number}. ${item.path}`));
  const why = item.decision === "unfamiliar" ? "unfamiliar: unlike the training photos" :
    `review: top probability ${(item.probability * 100).toFixed(1)} %`;
  body.append(element("p", `decision decision-${item.decision}`, why));
  if (item.view === "back") body.append(element("p", "warning", "back view: no neckline to see"));
  const quick = element("div", "buttons top3");
  for (const [label, p] of item.top3) {
    const button = element("button", "pick", `${label} ${(p * 100).toFixed(0)} %`);
    button.type = "button";
    button.value = label;
    button.addEventListener("click", () => send(card, listing, item.path, label));
    quick.append(button);
  }
  const other = element("select", "other");
  other.setAttribute("aria-label", "another class");
  other.append(new Option("another class…", ""));
  for (const name of listing.classes) other.append(new Option(name, name));
  other.addEventListener("change", () => { if (other.value) send(card, listing, item.path, other.value); });
  const none = element("div", "buttons");
  for (const [value, text] of Object.entries(listing.not_a_class)) {
    const button = element("button", value, text);
    button.type = "button";
    button.value = value;
    button.addEventListener("click", () => send(card, listing, item.path, value));
    none.append(button);
  }
  body.append(quick, other, none, element("p", "answer"));
  card.append(frame(item), body);
  $("queue").append(card);
  showAnswer(card, item.answer);
}

async function load() {
  const response = await fetch("/queue/items");
  const listing = await response.json();
  if (!response.ok) {
    $("summary").textContent = listing.detail;
    return;
  }
  if (!listing.found) {
    $("summary").textContent = `No ${listing.tags_file} yet: run python -m stages.tag FOLDER first.`;
    return;
  }
  notAClass = listing.not_a_class;
  total = listing.items.length;
  answered = listing.answered;
  showSummary(listing);
  listing.items.forEach((item, i) => addCard(listing, item, i + 1));
}

load();
