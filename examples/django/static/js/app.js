document.getElementById("js").textContent = "JavaScript ran.";
