#!/usr/bin/env ruby
# Live requests to a Chef server, signed by Debian's ruby-mixlib-authentication (the library
# Chef itself signs with), for chef-sync's interop tests.
#
#   ruby mixlib_live.rb ORG_URL KEY_PEM USER
#
# Sends GET, POST, PUT and DELETE on ORG_URL/roles signed with protocols 1.0, 1.1 and 1.3, then
# a tampered signature, a stale timestamp (one hour old) and an unknown user. Prints one JSON
# object: {"1.0 POST": {"status": 201, "error": null}, ..., "tampered": {...}, ...}.

require "openssl"
require "json"
require "net/http"
require "uri"
require "time"
require "mixlib/authentication"
require "mixlib/authentication/signedheaderauth"

org_url, key_path, user = ARGV
abort "usage: mixlib_live.rb ORG_URL KEY_PEM USER" unless user
KEY = OpenSSL::PKey::RSA.new(File.read(key_path))
BASE = URI(org_url)

def send_signed(method, rel, body, version, user: USER_ID, at: Time.now.utc, tamper: false)
  uri = URI(BASE.to_s + rel)
  signer = Mixlib::Authentication::SignedHeaderAuth.signing_object(
    http_method: method.downcase.to_sym, path: uri.path, body: body || "",
    timestamp: at.iso8601, user_id: user, proto_version: version,
    headers: { "X-Ops-Server-API-Version" => "1" }
  )
  algorithm = Mixlib::Authentication::SignedHeaderAuth::ALGORITHM_FOR_VERSION.fetch(version)
  headers = signer.sign(KEY, sign_algorithm: algorithm, sign_version: version)
  headers["X-Ops-Server-API-Version"] = "1"
  if tamper
    first = headers["X-Ops-Authorization-1"]
    headers["X-Ops-Authorization-1"] = (first[0] == "A" ? "B" : "A") + first[1..]
  end
  request = Net::HTTP.const_get(method.capitalize).new(uri)
  headers.each { |k, v| request[k] = v }
  request["Content-Type"] = "application/json"
  request["Accept"] = "application/json"
  request.body = body if body
  response = Net::HTTP.start(uri.host, uri.port) { |http| http.request(request) }
  error = begin
    JSON.parse(response.body.to_s)["error"]
  rescue JSON::ParserError
    nil
  end
  { "status" => response.code.to_i, "error" => error }
end

USER_ID = user
results = {}
%w[1.0 1.1 1.3].each do |v|
  name = "mixlib-#{v.tr('.', '-')}"
  role = JSON.generate({ "name" => name, "description" => v })
  results["#{v} POST"] = send_signed("POST", "/roles", role, v)
  results["#{v} GET"] = send_signed("GET", "/roles/#{name}", nil, v)
  results["#{v} PUT"] = send_signed("PUT", "/roles/#{name}", JSON.generate({ "name" => name, "description" => "changed" }), v)
  results["#{v} DELETE"] = send_signed("DELETE", "/roles/#{name}", nil, v)
end
results["tampered"] = send_signed("GET", "/roles", nil, "1.1", tamper: true)
results["stale"] = send_signed("GET", "/roles", nil, "1.3", at: Time.now.utc - 3600)
results["unknown user"] = send_signed("GET", "/roles", nil, "1.0", user: "nobody-#{rand(1_000_000)}")
puts JSON.generate(results)
