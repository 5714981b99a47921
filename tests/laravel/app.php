<?php
// The Laravel app's side of the contract, run for real: Eloquent (illuminate/database
// from Debian's php-illuminate-database) on the `ai` connection, the app's tables
// made by the Schema builder as its migrations make them, models with the app's
// table names, $casts, relations and accessors (shared/LARAVEL-CONTRACT.md), and
// rows inserted the way the app's CallRecordingService does.
//
// php app.php DRIVER DATABASE COMMAND [ARGS…]
//   DRIVER: mysql | pgsql; DATABASE: the database name (server from the env:
//   CS_PHP_HOST, CS_PHP_PORT, CS_PHP_USER, CS_PHP_PASSWORD).
// Commands:
//   create-tables            the app's tables (recordings inferred, the others as migrated)
//   migrate FILE             run the up() of a Laravel migration file (e.g. callscribe's)
//   rollback FILE            run its down()
//   upload PATH APEX EXT BUCKET   insert a recording as uploadForProcessing does; prints its id
//   reprocess ID             the app's reprocess()
//   soft-delete ID           $recording->delete() (SoftDeletes)
//   read ID                  what the app's pages read, as JSON
//   columns TABLE            the table's columns, as JSON

require '/usr/share/php/Illuminate/Database/autoload.php';

use Illuminate\Container\Container;
use Illuminate\Database\Capsule\Manager as Capsule;
use Illuminate\Database\Eloquent\Model;
use Illuminate\Database\Eloquent\SoftDeletes;
use Illuminate\Database\Eloquent\Relations\BelongsTo;
use Illuminate\Database\Eloquent\Relations\HasMany;
use Illuminate\Database\Eloquent\Relations\HasOne;
use Illuminate\Database\Schema\Blueprint;
use Illuminate\Support\Facades\Facade;
use Illuminate\Support\Facades\Schema;

error_reporting(E_ALL & ~E_DEPRECATED);

[$_, $driver, $database, $command] = array_pad($argv, 4, null);
$args = array_slice($argv, 4);

$capsule = new Capsule();
$capsule->addConnection([
    'driver' => $driver,
    'host' => getenv('CS_PHP_HOST') ?: '127.0.0.1',
    'port' => getenv('CS_PHP_PORT') ?: ($driver === 'pgsql' ? 5432 : 3306),
    'database' => $database,
    'username' => getenv('CS_PHP_USER') ?: ($driver === 'pgsql' ? 'postgres' : 'root'),
    'password' => getenv('CS_PHP_PASSWORD') ?: '',
    'charset' => $driver === 'pgsql' ? 'utf8' : 'utf8mb4',
    'collation' => $driver === 'pgsql' ? null : 'utf8mb4_unicode_ci',
    'prefix' => '',
    // As the app's `ai` connection: not strict; the time zone as the README tells the app team.
    'strict' => false,
    'timezone' => '+00:00',
], 'ai');
$capsule->setAsGlobal();
$capsule->bootEloquent();
// Facades for migration files (Schema::connection('ai'), DB::connection('ai')).
$app = new Container();
$app->instance('db', $capsule->getDatabaseManager());
$app->bind('db.schema', fn () => $capsule->getConnection('ai')->getSchemaBuilder());
Facade::setFacadeApplication($app);
date_default_timezone_set('UTC');

class CallRecording extends Model
{
    use SoftDeletes;

    protected $connection = 'ai';
    protected $table = 'ai_call_recordings';
    protected $fillable = [
        'apex_id', 'r2_path', 'r2_bucket', 'duration_seconds', 'file_size_bytes', 'file_format',
        'processing_status', 'processing_error', 'uploaded_at', 'processing_started_at', 'processing_completed_at',
    ];
    protected $casts = [
        'uploaded_at' => 'datetime',
        'processing_started_at' => 'datetime',
        'processing_completed_at' => 'datetime',
    ];

    public function transcription(): HasOne
    {
        return $this->hasOne(CallTranscription::class, 'ai_call_recording_id');
    }

    public function analysis(): HasOne
    {
        return $this->hasOne(CallAnalysis::class, 'ai_call_recording_id');
    }
}

class CallTranscription extends Model
{
    protected $connection = 'ai';
    protected $table = 'ai_call_transcriptions';
    protected $casts = ['confidence_score' => 'float', 'processing_time_seconds' => 'integer'];

    public function segments(): HasMany
    {
        return $this->hasMany(CallSegment::class, 'ai_call_transcription_id')->orderBy('start_time');
    }

    public function getSpeakersAttribute(): array
    {
        return $this->segments()->distinct('speaker_label')->pluck('speaker_label')->toArray();
    }
}

class CallSegment extends Model
{
    protected $connection = 'ai';
    protected $table = 'ai_call_segments';
}

class CallAnalysis extends Model
{
    protected $connection = 'ai';
    protected $table = 'ai_call_analysis';
    protected $casts = [
        'sentiment_score' => 'float',
        'quality_score' => 'float',
        'key_topics' => 'array',
        'action_items' => 'array',
        'compliance_flags' => 'array',
        'speaker_metrics' => 'array',
        'processing_time_seconds' => 'integer',
    ];

    public function recording(): BelongsTo
    {
        return $this->belongsTo(CallRecording::class, 'ai_call_recording_id');
    }

    public function getSentimentColorAttribute(): string
    {
        return match ($this->sentiment_label) {
            'very_positive' => 'green',
            'positive' => 'lime',
            'neutral' => 'gray',
            'negative' => 'orange',
            'very_negative' => 'red',
            default => 'unknown',
        };
    }

    public function getQualityGradeAttribute(): string
    {
        if ($this->quality_score === null) {
            return 'N/A';
        }
        return match (true) {
            $this->quality_score >= 90 => 'A',
            $this->quality_score >= 80 => 'B',
            $this->quality_score >= 70 => 'C',
            $this->quality_score >= 60 => 'D',
            default => 'F',
        };
    }

    public function hasComplianceIssues(): bool
    {
        return !empty($this->compliance_flags);
    }
}

$schema = Schema::connection('ai');

switch ($command) {
    case 'create-tables':
        // The recordings migration is not in the app's repository: its columns come
        // from the model's $fillable, SoftDeletes and the service; the status is an
        // enum with the evolved table's `queued`.
        $schema->create('ai_call_recordings', function (Blueprint $table) {
            $table->id();
            $table->string('apex_id')->nullable()->index();
            $table->string('r2_path');
            $table->string('r2_bucket')->nullable();
            $table->integer('duration_seconds')->nullable();
            $table->unsignedBigInteger('file_size_bytes')->nullable();
            $table->string('file_format')->nullable();
            $table->enum('processing_status', ['pending', 'queued', 'processing', 'completed', 'failed'])->default('pending');
            $table->text('processing_error')->nullable();
            $table->timestamp('uploaded_at')->nullable();
            $table->timestamp('processing_started_at')->nullable();
            $table->timestamp('processing_completed_at')->nullable();
            $table->timestamps();
            $table->softDeletes();
            $table->index('processing_status');
        });
        // As migration 2025_12_05_000002 of the app.
        $schema->create('ai_call_transcriptions', function (Blueprint $table) {
            $table->id();
            $table->foreignId('ai_call_recording_id')->constrained('ai_call_recordings')->onDelete('cascade');
            $table->longText('full_transcript');
            $table->json('segments')->nullable();
            $table->longText('redacted_transcript')->nullable();
            $table->json('pii_detected')->nullable();
            $table->string('language_detected')->nullable();
            $table->decimal('confidence_score', 5, 4)->nullable();
            $table->string('model_used')->default('whisper-medium');
            $table->integer('processing_time_seconds')->nullable();
            $table->timestamps();
            $table->index('ai_call_recording_id');
        });
        // As migration 2025_12_05_000004 of the app.
        $schema->create('ai_call_analysis', function (Blueprint $table) {
            $table->id();
            $table->foreignId('ai_call_recording_id')->constrained('ai_call_recordings')->onDelete('cascade');
            $table->text('summary')->nullable();
            $table->decimal('sentiment_score', 4, 2)->nullable();
            $table->enum('sentiment_label', ['very_negative', 'negative', 'neutral', 'positive', 'very_positive'])->nullable();
            $table->json('key_topics')->nullable();
            $table->json('action_items')->nullable();
            $table->decimal('quality_score', 5, 2)->nullable();
            $table->json('compliance_flags')->nullable();
            $table->json('speaker_metrics')->nullable();
            $table->string('model_used')->default('llama-3.1-8b');
            $table->integer('processing_time_seconds')->nullable();
            $table->timestamps();
            $table->index('ai_call_recording_id');
            $table->index('sentiment_label');
            $table->index('quality_score');
        });
        echo "ok\n";
        break;

    case 'migrate':
    case 'rollback':
        $migration = require $args[0];
        $command === 'migrate' ? $migration->up() : $migration->down();
        echo "ok\n";
        break;

    case 'upload':
        // CallRecordingService::uploadForProcessing, after the put to R2.
        [$path, $apex, $ext, $bucket] = $args;
        $recording = CallRecording::create([
            'apex_id' => $apex,
            'r2_path' => $path,
            'r2_bucket' => $bucket,
            'duration_seconds' => null,
            'file_size_bytes' => 1234,
            'file_format' => $ext,
            'processing_status' => 'pending',
            'uploaded_at' => Carbon\Carbon::now(),
        ]);
        echo $recording->id, "\n";
        break;

    case 'reprocess':
        // CallRecordingService::reprocess.
        CallRecording::findOrFail($args[0])->update([
            'processing_status' => 'pending',
            'processing_error' => null,
            'processing_started_at' => null,
            'processing_completed_at' => null,
        ]);
        echo "ok\n";
        break;

    case 'set-status':
        CallRecording::findOrFail($args[0])->update(['processing_status' => $args[1]]);
        echo "ok\n";
        break;

    case 'soft-delete':
        CallRecording::findOrFail($args[0])->delete();
        echo "ok\n";
        break;

    case 'read':
        $r = CallRecording::withTrashed()->findOrFail($args[0]);
        $t = $r->transcription;
        $a = $r->analysis;
        $out = [
            'processing_status' => $r->processing_status,
            'processing_error' => $r->processing_error,
            'duration_seconds' => $r->duration_seconds,
            'processing_started_at' => $r->processing_started_at?->toIso8601String(),
            'processing_completed_at' => $r->processing_completed_at?->toIso8601String(),
            'updated_at' => $r->updated_at?->toIso8601String(),
            'trashed' => $r->trashed(),
            'transcriptions' => CallTranscription::where('ai_call_recording_id', $r->id)->count(),
            'analyses' => CallAnalysis::where('ai_call_recording_id', $r->id)->count(),
        ];
        if ($t) {
            $segments = json_decode($t->getAttributes()['segments'] ?? 'null', true);
            $out['transcription'] = [
                'full_transcript' => $t->full_transcript,
                'redacted_transcript' => $t->redacted_transcript,
                'pii_detected' => json_decode($t->getAttributes()['pii_detected'] ?? 'null', true),
                'language_detected' => $t->language_detected,
                'confidence_score' => $t->confidence_score,
                'model_used' => $t->model_used,
                'processing_time_seconds' => $t->processing_time_seconds,
                'segments_json' => $segments,
                'segment_rows' => $schema->hasTable('ai_call_segments') ? $t->segments()->get()->map(fn ($s) => [
                    'speaker_label' => $s->speaker_label,
                    'start_time' => (float) $s->start_time,
                    'end_time' => (float) $s->end_time,
                    'text' => $s->text,
                ])->all() : null,
                // The app's accessor, as written: DISTINCT ON with ORDER BY start_time
                // is refused by PostgreSQL (an app bug, not the rows'); report it.
                'speakers' => $schema->hasTable('ai_call_segments') ? (function () use ($t) {
                    try {
                        return $t->speakers;
                    } catch (\Throwable $e) {
                        return ['accessor_error' => strtok($e->getMessage(), "\n")];
                    }
                })() : null,
            ];
        }
        if ($a) {
            $out['analysis'] = [
                'summary' => $a->summary,
                'sentiment_score' => $a->sentiment_score,
                'sentiment_label' => $a->sentiment_label,
                'sentiment_color' => $a->sentiment_color,
                'quality_score' => $a->quality_score,
                'quality_grade' => $a->quality_grade,
                'has_compliance_issues' => $a->hasComplianceIssues(),
                'key_topics' => $a->key_topics,
                'action_items' => $a->action_items,
                'compliance_flags' => $a->compliance_flags,
                'speaker_metrics' => $a->speaker_metrics,
                'model_used' => $a->model_used,
                'processing_time_seconds' => $a->processing_time_seconds,
                'recording_id_via_belongs_to' => $a->recording->id,
            ];
        }
        echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_UNICODE), "\n";
        break;

    case 'columns':
        echo json_encode($schema->getColumnListing($args[0])), "\n";
        break;

    default:
        fwrite(STDERR, "unknown command: $command\n");
        exit(2);
}
