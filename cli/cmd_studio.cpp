// cli/cmd_studio.cpp: `distill studio --db F`: the curation web app on loopback, with a session token.
#include <cstdlib>
#include <iostream>

#include "cli/command.h"
#include "common/errors.h"
#include "studio/studio.h"

namespace distill::cli {

void register_studio(CLI::App& root, Registry& reg) {
  auto o = std::make_shared<studio::StudioOptions>();
  if (const char* u = std::getenv("USER"); u && *u) o->user = u;
  else o->user = "curator";
  CLI::App* c = root.add_subcommand("studio", "curate a store in the browser: overview, samples, review by keyboard, log, undo");
  c->add_option("--db", o->db, "store file");
  c->add_option("--host", o->host, "address to serve (loopback by default; 0.0.0.0 serves the network)");
  c->add_option("--port", o->port, "port (0: a free one)");
  c->add_option("--user", o->user, "who the actions are logged as (studio:USER; default $USER)");
  c->add_flag("--read-only", o->read_only, "browse only: refuse every change (a store that is not writable opens so anyway)");
  reg.add(c, [c, o] {
    require(*c, "--db");
    if (o->port < 0 || o->port > 65535) throw InputError("--port " + std::to_string(o->port) + ": expected 0-65535");
    studio::Studio app(*o);
    app.run([&](const std::string& url) {
      std::cout << "distill studio: " << o->db << " as studio:" << o->user << (app.read_only() ? " (read-only)" : "") << "\n  open " << url
                << "\n  (the token in it is needed for every request; Ctrl-C stops)" << std::endl;
      if (app.snapshot())
        std::cout << "  the store is read as it stood at start (its folder is not writable here): restart to see later changes\n";
    });
    std::cout << "distill studio: stopped" << std::endl;
  });
}

}  // namespace distill::cli
