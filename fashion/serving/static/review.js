"use strict";
// The review page of stages/serve.py: lists GET /review/suspects and sends each keep / exclude click to
// POST /review/decision, which rewrites the exclude file. Everything it needs comes from this server.

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // never innerHTML: paths and labels come from files
  return node;
}

const DONE = { exclude: "excluded: not trained on after the next dvc repro", keep: "kept: the label is right" };

function showDecision(card, decision) {
  card.dataset.decision = decision || "";
  card.querySelector(".decision").textContent = decision ? DONE[decision] : "not decided";
  for (const button of card.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.value === decision));
  }
}

async function decide(card, path, decision) {
  $("status").textContent = "";
  const response = await fetch("/review/decision", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path, decision }),
  });
  const answer = await response.json();
  if (!response.ok) {
    $("status").textContent = answer.detail;
    return;
  }
  showDecision(card, answer.decision);
}

function addCard(row, number) {
  const card = element("article", "card suspect");
  card.dataset.path = row.path;
  const frame = element("div", "frame");
  const image = element("img");
  image.alt = row.path;
  image.loading = "lazy";
  image.src = `/review/photo?path=${encodeURIComponent(row.path)}`;
  frame.append(image);
  const body = element("div", "body");
  body.append(element("p", "name", `${number}. ${row.path} (${row.split})`));
  const labels = element("p", "labels");
  labels.append(element("span", "given", row.given), document.createTextNode(" → "),
                element("span", "suggested", row.suggested));
  body.append(labels, element("p", "hint", `given → suggested; label quality ${Number(row.quality).toFixed(3)}: ${row.reason}`));
  const buttons = element("div", "buttons");
  for (const [value, text] of [["keep", "Keep"], ["exclude", "Exclude"]]) {
    const button = element("button", value, text);
    button.type = "button";
    button.value = value;
    button.addEventListener("click", () => decide(card, row.path, value));
    buttons.append(button);
  }
  body.append(buttons, element("p", "decision"));
  card.append(frame, body);
  $("suspects").append(card);
  showDecision(card, row.decision);
}

async function load() {
  const response = await fetch("/review/suspects");
  const listing = await response.json();
  if (!response.ok) {
    $("summary").textContent = listing.detail;
    return;
  }
  if (!listing.found) {
    $("summary").textContent = `No ${listing.suspects_file} yet: run dvc repro (its suspects stage) first.`;
    return;
  }
  $("summary").textContent = `${listing.suspects.length} suspect label(s) in ${listing.suspects_file}; ` +
    `decisions go into ${listing.exclude_file}.`;
  listing.suspects.forEach((row, i) => addCard(row, i + 1));
}

load();
