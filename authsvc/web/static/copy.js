// The copy buttons of the self-service page. The page works without this script: the buttons
// stay hidden and the commands are plain text to select.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const status = document.querySelector(".copied");
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(source.textContent);
        if (status) status.textContent = "Copied to the clipboard.";
      } catch (error) {
        if (status) status.textContent = "Copying is not allowed here: select the command and copy it.";
      }
    });
  }
});
